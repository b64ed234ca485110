/* common: error strings. */
#include "wr.h"

const char *wr_strerror(int err)
{
	switch (err) {
	case WR_OK:
		return "ok";
	case WR_ENOMEM:
		return "out of memory";
	case WR_EINVAL:
		return "invalid argument";
	case WR_ENOENT:
		return "not found";
	case WR_EFULL:
		return "full";
	case WR_EPERM:
		return "not permitted";
	case WR_EAGAIN:
		return "try again";
	case WR_EEXIST:
		return "already exists";
	case WR_EIO:
		return "i/o error";
	}
	return "unknown error";
}
