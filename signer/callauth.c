#include "callauth.h"

#include <string.h>

const struct server_method *server_method_find(const struct server_method *methods, size_t n,
					       const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(methods[i].path, path) == 0)
			return &methods[i];
	return NULL;
}

int server_authorized(const struct caller *who, const struct server_method *m, const char *path,
		      struct sftca_msg *why)
{
	if (who->role >= m->min_role && (m->min_role == ROLE_NONE || who->role != ROLE_NONE) &&
	    (m->min_role != ROLE_NONE || strcmp(who->identity, "unauthenticated") != 0))
		return 1;
	if (who->role == ROLE_NONE)
		msg_set(why, "%s is not authorized for any role", who->identity);
	else
		msg_set(why, "%s needs the %s role; %s has %s", path, role_name(m->min_role),
			who->identity, role_name(who->role));
	return 0;
}
