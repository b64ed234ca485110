/*
 * node/fds: living at the descriptor limit (issue 10). At the limit lws's
 * accept() fails with EMFILE, the listener stays readable and the loop
 * spins at 100% writing "accept: errno 24" while answering no one. Here:
 *
 *  - the soft RLIMIT_NOFILE is raised to the hard one at start;
 *  - [limits] max_clients is held under it (a reserve of NODE_FD_RESERVE
 *    descriptors for links, files and the like, and the peers);
 *  - a socket accepted with a descriptor number inside the reserve is
 *    closed at once (descriptors are handed out lowest first, so its
 *    number says how many are open): accept() itself keeps room;
 *  - should EMFILE come anyway (descriptors held elsewhere), lws's log line
 *    says so: a spare descriptor kept open for this is given up, the
 *    listener's queue is accepted and closed, the spare taken again, so
 *    the listener is quiet until new connections come.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "node.h"

#define NODE_FD_RESERVE 64

/* the node the lws log hook serves (one per process) */
static struct node *fd_node;

void node_fds_init(struct node *node)
{
	struct rlimit rl;

	fd_node = node;
	node->fd_limit = 1024;
	node->spare_fd = -1;
	node->listen_fd = -1;
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
			getrlimit(RLIMIT_NOFILE, &rl);
		}
		node->fd_limit = rl.rlim_cur == RLIM_INFINITY ||
						 rl.rlim_cur > (rlim_t)INT32_MAX
					 ? INT32_MAX
					 : (int)rl.rlim_cur;
	}
	node->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	node_fds_clamp(node);
}

void node_fds_clamp(struct node *node)
{
	int room = node->fd_limit - NODE_FD_RESERVE - node->cfg->max_peers;

	if (room < 16)
		room = 16;
	node->max_clients = node->cfg->max_clients;
	if (node->max_clients > room) {
		wr_warn("limits.max_clients %d lowered to %d: this process may "
			"open %d descriptors (RLIMIT_NOFILE), %d are kept for "
			"links and files",
			node->cfg->max_clients, room, node->fd_limit,
			node->fd_limit - room);
		node->max_clients = room;
	}
}

void node_fds_listener(struct node *node)
{
	int max = node->fd_limit < 4096 ? node->fd_limit : 4096;

	/* the one listening socket of the process, made by lws */
	for (int fd = 3; fd < max; fd++) {
		int on = 0;
		socklen_t len = sizeof(on);

		if (!getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) &&
		    on) {
			node->listen_fd = fd;
			return;
		}
	}
}

int node_fds_filter(struct node *node, int fd)
{
	if (fd < node->fd_limit - NODE_FD_RESERVE)
		return 0;
	node->ctr.refused_fds++;
	return -1; /* lws closes it */
}

void node_fds_emfile(void)
{
	struct node *node = fd_node;
	int fd, n = 0;

	if (!node || node->listen_fd < 0)
		return;
	if (node->spare_fd >= 0)
		close(node->spare_fd);
	/* what waits in the queue would be refused anyway: close it, so the
	 * listener stops waking the loop */
	while (n < 1024 && (fd = accept4(node->listen_fd, NULL, NULL,
					 SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		close(fd);
		n++;
	}
	node->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	node->ctr.refused_fds += (uint64_t)n;
}

void node_fds_fini(struct node *node)
{
	if (node->spare_fd >= 0)
		close(node->spare_fd);
	node->spare_fd = -1;
	fd_node = NULL;
}
