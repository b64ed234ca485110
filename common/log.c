/*
 * common: the logger. One line per event on stderr: UTC timestamp with
 * milliseconds, level, message. Callers never pass secrets (passwords,
 * tokens); the logger cannot tell, so that is the callers' invariant.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "wr.h"

static enum wr_log_level cur_level = WR_LOG_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void wr_log_set_level(enum wr_log_level lvl)
{
	cur_level = lvl;
}
enum wr_log_level wr_log_get_level(void)
{
	return cur_level;
}

int wr_log_level_parse(const char *name, enum wr_log_level *out)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(name, level_names[i])) {
			*out = (enum wr_log_level)i;
			return 0;
		}
	return -1;
}

static void vlog(enum wr_log_level lvl, bool force, const char *fmt,
		 va_list ap);

void wr_vlog(enum wr_log_level lvl, const char *fmt, va_list ap)
{
	vlog(lvl, false, fmt, ap);
}

void wr_log_force(enum wr_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(lvl, true, fmt, ap);
	va_end(ap);
}

static void vlog(enum wr_log_level lvl, bool force, const char *fmt, va_list ap)
{
	char line[1024];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int k;

	if (lvl < cur_level && !force)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	k = snprintf(line + n, sizeof(line) - n, ".%03dZ %-5s ",
		     (int)(tv.tv_usec / 1000), level_names[lvl]);
	if (k > 0)
		n += (size_t)k;
	k = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (k > 0)
		n += (size_t)k < sizeof(line) - n - 1 ? (size_t)k
						      : sizeof(line) - n - 2;
	/* strip trailing newlines (lws's messages carry one) */
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	line[n++] = '\n';
	/* one write per line keeps lines whole when several threads log */
	fwrite(line, 1, n, stderr);
}

void wr_log(enum wr_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	wr_vlog(lvl, fmt, ap);
	va_end(ap);
}
