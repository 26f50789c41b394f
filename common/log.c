#include "log.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "sftca";
static enum log_style log_style_cur = LOG_STYLE_CLI;
static enum log_level log_min = LOG_LVL_INFO;

static const char *const level_names[] = { "debug", "info", "warning", "error" };

void log_init(const char *ident, enum log_style style, enum log_level min_level)
{
	log_ident = ident;
	log_style_cur = style;
	log_min = min_level;
	if (style == LOG_STYLE_SYSLOG)
		openlog(ident, LOG_PID, LOG_DAEMON);
}

void log_set_level(enum log_level min_level)
{
	log_min = min_level;
}

enum log_level log_get_level(void)
{
	return log_min;
}

/* Replace control characters so one call is always one line. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void emit(enum log_level level, const char *func, const char *msg)
{
	char line[2300];
	int n;

	if (log_style_cur == LOG_STYLE_SYSLOG) {
		static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
		syslog(prio[level], "%s: %s", func, msg);
		return;
	}
	if (log_style_cur == LOG_STYLE_DAEMON) {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line, sizeof(line), "%s.%03ldZ %s[%ld] %s %s: %s\n", stamp,
			     ts.tv_nsec / 1000000, log_ident, (long)getpid(),
			     level_names[level], func, msg);
	} else if (log_min == LOG_LVL_DEBUG) {
		n = snprintf(line, sizeof(line), "%s: %s: %s: %s\n", log_ident,
			     level_names[level], func, msg);
	} else {
		n = snprintf(line, sizeof(line), "%s: %s%s%s\n", log_ident,
			     level == LOG_LVL_INFO ? "" : level_names[level],
			     level == LOG_LVL_INFO ? "" : ": ", msg);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* One write per line keeps lines from different threads whole. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void sftca_log(enum log_level level, const char *func, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (level < log_min || level > LOG_LVL_ERROR)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sanitize(msg);
	emit(level, func, msg);
}

void log_openssl_errors(const char *func, const char *what)
{
	unsigned long e;
	const char *file, *data;
	int line, flags;
	char buf[256];

	sftca_log(LOG_LVL_ERROR, func, "%s failed", what);
	while ((e = ERR_get_error_all(&file, &line, NULL, &data, &flags)) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		sftca_log(LOG_LVL_ERROR, func, "  openssl: %s%s%s", buf,
			  (flags & ERR_TXT_STRING) && data ? ": " : "",
			  (flags & ERR_TXT_STRING) && data ? data : "");
	}
}
