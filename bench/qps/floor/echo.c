/*
 * bench/qps/floor/echo.c: the smallest UDP "server" there is, to measure the floor under
 * bench/qps/cpu.mjs. It answers every datagram with itself, QR bit set (dnsperf counts that as
 * a response), with no DNS logic at all.
 *
 *   echo <port> <blocking|epoll> <processes>
 *
 * blocking: recvmmsg(MSG_WAITFORONE) on a blocking socket, then sendmmsg: how gdnsd's UDP
 *           threads wait (2 syscalls per batch).
 * epoll:    epoll_wait (level-triggered, as libuv registers a uv_poll), recvmmsg(MSG_DONTWAIT),
 *           sendmmsg: how sitedns's batched path waits inside Node's event loop (3 per batch).
 * Each process binds its own SO_REUSEPORT socket, like sitedns's and gdnsd's UDP threads.
 * Stopping the first process (SIGTERM) stops and reaps the others; they also die with it
 * (PR_SET_PDEATHSIG) if it is killed outright.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BATCH 64
#define SLOT 2048

static pid_t children[64];
static int child_count;

static void stop_all(int sig) {
  (void)sig;
  for (int i = 0; i < child_count; i++) kill(children[i], SIGKILL);
  for (int i = 0; i < child_count; i++) waitpid(children[i], NULL, 0);
  _exit(0);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: echo <port> <blocking|epoll> <processes>\n");
    return 2;
  }
  int port = atoi(argv[1]);
  int use_epoll = strcmp(argv[2], "epoll") == 0;
  int processes = atoi(argv[3]);
  if (processes < 1 || processes > 64) processes = 1;
  pid_t parent = getpid();
  for (int p = 1; p < processes; p++) {
    pid_t child = fork();
    if (child == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) return 0;
      break;
    }
    if (child > 0) children[child_count++] = child;
  }
  if (getpid() == parent) signal(SIGTERM, stop_all);
  int fd = socket(AF_INET, SOCK_DGRAM | (use_epoll ? SOCK_NONBLOCK : 0), 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  struct sockaddr_in bind_to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
  inet_pton(AF_INET, "127.0.0.1", &bind_to.sin_addr);
  if (bind(fd, (struct sockaddr *)&bind_to, sizeof bind_to) != 0) {
    perror("bind");
    return 1;
  }
  int ep = epoll_create1(0);
  struct epoll_event watch = { .events = EPOLLIN, .data.fd = fd };
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &watch);
  if (getpid() == parent) {
    printf("echo ready on port %d (%s, %d processes)\n", port, argv[2], processes);
    fflush(stdout);
  }

  static char slots[BATCH][SLOT];
  static struct mmsghdr in[BATCH], out[BATCH];
  static struct iovec in_iov[BATCH], out_iov[BATCH];
  static struct sockaddr_in from[BATCH];
  for (;;) {
    if (use_epoll) {
      struct epoll_event ready[4];
      if (epoll_wait(ep, ready, 4, -1) <= 0) continue;
    }
    for (int i = 0; i < BATCH; i++) {
      in_iov[i] = (struct iovec){ slots[i], SLOT };
      memset(&in[i], 0, sizeof in[i]);
      in[i].msg_hdr.msg_iov = &in_iov[i];
      in[i].msg_hdr.msg_iovlen = 1;
      in[i].msg_hdr.msg_name = &from[i];
      in[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = recvmmsg(fd, in, BATCH, use_epoll ? MSG_DONTWAIT : MSG_WAITFORONE, NULL);
    if (n <= 0) continue;
    int m = 0;
    for (int i = 0; i < n; i++) {
      if (in[i].msg_len < 12) continue;
      slots[i][2] |= (char)0x80; /* QR */
      out_iov[m] = (struct iovec){ slots[i], in[i].msg_len };
      memset(&out[m], 0, sizeof out[m]);
      out[m].msg_hdr.msg_iov = &out_iov[m];
      out[m].msg_hdr.msg_iovlen = 1;
      out[m].msg_hdr.msg_name = &from[i];
      out[m].msg_hdr.msg_namelen = in[i].msg_hdr.msg_namelen;
      m++;
    }
    if (m > 0) sendmmsg(fd, out, (unsigned)m, 0);
  }
}
