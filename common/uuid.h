/* UUIDs as FMC and FTD use them: canonical lowercase 8-4-4-4-12 hex. */
#ifndef SFTCA_UUID_H
#define SFTCA_UUID_H

#define UUID_STR_LEN 36

/* 1 when s is exactly a canonical lowercase UUID; 0 otherwise. */
int uuid_is_canonical(const char *s);
/* Fill out[37] with a random (version 4) UUID. */
int uuid_random(char out[UUID_STR_LEN + 1]);

#endif
