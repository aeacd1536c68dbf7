/*
 * udp_batch: the batched UDP fast path of sitedns. Linux only.
 *
 * Why: with node:dgram every datagram costs one recvmsg, one sendmsg and one JavaScript callback
 * with a fresh Buffer and rinfo object; that caps one Node.js process well below gdnsd. Here one
 * readiness event drains up to `batch` datagrams with one recvmmsg(2), JavaScript is called ONCE
 * with the count, and the replies JavaScript wrote are sent with one sendmmsg(2).
 *
 * Blocking sockets (openBlocking/receive/send, further down) serve `serve --udp-threads`: the
 * same buffer layout and checks, but a worker thread's JavaScript loop waits in recvmmsg itself.
 *
 * What lives here is only socket plumbing. All DNS logic stays in JavaScript (src/server/
 * udp-batched.ts feeding the socket-free handler).
 *
 * Shared memory: one ArrayBuffer allocated by JavaScript, laid out as
 *
 *   [ meta: batch x META_WORDS int32 ][ in: batch x slot ][ out: batch x slot ][ over: batch x (MAX_DATAGRAM - slot) ]
 *
 *   meta[i * META_WORDS + M_IN_LEN]   datagram length in slot i (0 = no datagram in this slot)
 *   meta[i * META_WORDS + M_OUT_LEN]  reply length JavaScript wrote in out slot i (0 = no reply)
 *   meta[i * META_WORDS + M_PORT]     source port (host order)
 *   meta[i * META_WORDS + M_FAMILY]   4 or 6
 *   meta[i * META_WORDS + M_ADDR..]   source address bytes, network order (4 or 16 bytes)
 *   meta[i * META_WORDS + M_LOCAL..]  the address the datagram was sent to (4 or 16 bytes)
 *   meta[i * META_WORDS + M_IFINDEX]  the interface it arrived on (0 on a socket bound to one address)
 *
 * A slot's meta is 16 words, one 64-byte cache line. Queries and replies have separate areas so
 * that a reply can be built while its query is still being read (the prebuilt-answer copy
 * overwrites the question it must patch the case from).
 *
 * Any datagram up to MAX_DATAGRAM bytes is received: each slot's receive vector is its `in` slot
 * followed by its own part of the `over` area, so a datagram longer than a slot continues there
 * (counted as `large`) and JavaScript reads it from both. Slots stay small so that the `in` area
 * of a batch of ordinary queries is dense; the `over` pages are touched only by long datagrams
 * (the zero-filled ArrayBuffer is mapped lazily, so they cost no resident memory until then).
 *
 * Replies leave from the address each query was sent to (RFC 1122 §4.1.3.5; resolvers drop a
 * reply from another address). On a socket bound to a wildcard address (0.0.0.0, ::) the
 * destination of every datagram is read from its IP_PKTINFO / IPV6_PKTINFO control message and
 * its reply is sent with that address as the source (ipi_spec_dst / ipi6_addr), as gdnsd, knot
 * and NSD do. The interface index is reported but not used to send (except for an IPv6
 * link-local source, which needs it): forcing the arrival interface would break asymmetric
 * routing; the routing table picks the interface. A socket bound to one address needs none of
 * this: the kernel replies from its address.
 * The addresses used for the reply never leave C (msg_name and the control message of the
 * received datagram are reused for the send), so JavaScript cannot redirect a reply; it only
 * sees a copy.
 *
 * Memory safety rules, each applied where noted "BOUND":
 *   - recvmmsg writes at most `slot` bytes into a slot and MAX_DATAGRAM - slot into its `over`
 *     part; a longer datagram (MSG_TRUNC, impossible for UDP over IP) is dropped and counted.
 *   - a control message is read only after checking its level, type and length.
 *   - an address is copied into meta only after checking msg_namelen covers the sockaddr type.
 *   - a reply length written by JavaScript is validated (1..slot) before it becomes an iov_len.
 *   - the ArrayBuffer is re-validated (not detached, still large enough) before every use.
 *
 * Send backpressure: when sendmmsg returns EAGAIN the unsent replies stay queued (their memory
 * is not reused, because reading stops until they are gone), the fd is polled for WRITABLE and
 * the rest is retried. The queue is dropped and counted (C_DROP_SEND_QUEUE) when it persists:
 * after `send_retries` writable wake-ups in a row that sent nothing, or when `send_timeout_ms`
 * passed and one last attempt still sends nothing (the timer is a safety net for a socket that
 * never turns writable; it tries before dropping because on a loaded machine the timer can be
 * run before the writable event of the same loop turn). Reading resumes once the queue is empty.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <poll.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <linux/filter.h>
#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

#include <node_api.h>
#include <uv.h>

/* Layout constants; src/server/udp-batched.ts mirrors these (checked by constants()). */
enum { META_WORDS = 16, M_IN_LEN = 0, M_OUT_LEN = 1, M_PORT = 2, M_FAMILY = 3, M_ADDR = 4, M_LOCAL = 8, M_IFINDEX = 12 };
enum { MAX_BATCH = 1024, MIN_SLOT = 512, MAX_SLOT = 65536 };
/* The longest UDP payload (16-bit length field, RFC 768); over IP it is at most 65,527 bytes. */
enum { MAX_DATAGRAM = 65535 };
/* spinMicros at most 1 ms; when a thread spins: receive_waiting(). */
enum { MAX_SPIN_MICROS = 1000, SPIN_MIN_BATCH = 8, SPIN_HIT_PERCENT = 75 };

/* Counters exposed to JavaScript (stats()) and from there to metrics. Order = COUNTER_NAMES. */
enum counter {
  C_RECEIVED,          /* datagrams received (before filtering) */
  C_SENT,              /* replies sent */
  C_BATCHES,           /* JavaScript calls */
  C_DROP_PORT0,        /* datagrams from source port 0: cannot be answered, reflection probe */
  C_DROP_OVERSIZE,     /* datagrams longer than MAX_DATAGRAM (MSG_TRUNC; cannot happen over IP) */
  C_DROP_EMPTY,        /* zero-length datagrams */
  C_DROP_BAD_ADDR,     /* unexpected address family or length (should never happen) */
  C_DROP_BAD_REPLY,    /* reply length from JavaScript out of range (a bug; never sent) */
  C_DROP_SEND_QUEUE,   /* replies dropped because the send queue stayed full */
  C_SEND_EAGAIN,       /* sendmmsg hit a full socket buffer (retried on writable) */
  C_RECV_ERRORS,       /* recvmmsg failures other than EAGAIN/EINTR */
  C_SEND_ERRORS,       /* sendmmsg failures other than EAGAIN/EINTR (that reply is dropped) */
  C_POLL_ERRORS,       /* uv_poll reported an error status */
  C_CALLBACK_ERRORS,   /* the JavaScript batch callback threw (its replies are dropped) */
  C_BUFFER_ERRORS,     /* the shared buffer was detached or shrunk (socket stops reading) */
  C_SPIN_HITS,         /* blocking, spinMicros: receives whose datagrams came while spinning */
  C_SPIN_MISSES,       /* blocking, spinMicros: spins that found nothing and went to sleep */
  C_LARGE,             /* datagrams longer than a slot, received through the `over` area */
  C_NO_PKTINFO,        /* wildcard socket: a datagram without its destination (replied as the kernel picks) */
  C_COUNT
};
static const char *const COUNTER_NAMES[C_COUNT] = {
  "received", "sent", "batches", "dropPort0", "dropOversize", "dropEmpty", "dropBadAddress",
  "dropBadReply", "dropSendQueue", "sendEagain", "recvErrors", "sendErrors", "pollErrors",
  "callbackErrors", "bufferErrors", "spinHits", "spinMisses", "large", "noPktinfo",
};

/* One slot's control message: the received IP_PKTINFO / IPV6_PKTINFO, rewritten for the reply. */
typedef union {
  char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) > CMSG_SPACE(sizeof(struct in_pktinfo)) ? CMSG_SPACE(sizeof(struct in6_pktinfo)) : CMSG_SPACE(sizeof(struct in_pktinfo))];
  struct cmsghdr align;
} control_t;

typedef struct sock {
  napi_env env;
  uv_poll_t poll;
  uv_timer_t timer;
  int fd;
  int family;                 /* AF_INET or AF_INET6 */
  int closing;                /* close() was called: no more syscalls or JavaScript calls */
  int env_gone;               /* the N-API environment is being torn down */
  int open_handles;           /* uv handles still to be closed before freeing */
  int js_finalized;           /* no JS handle refers to this struct (any more) */
  int waiting_writable;       /* the send queue is non-empty; polling for WRITABLE only */
  int blocking;               /* openBlocking(): no libuv handles; a thread calls receive/send */
  uint32_t last_count;        /* blocking: slots the last receive() filled (send() may not exceed) */
  uint32_t batch;             /* slots */
  uint32_t slot;              /* bytes per slot (in and out alike) */
  uint32_t over_len;          /* bytes of the `over` area per slot: MAX_DATAGRAM - slot */
  int pktinfo;                /* bound to a wildcard address: reply from each datagram's destination */
  uint8_t local[16];          /* bound address (network order), reported when pktinfo is off */
  uint32_t max_rounds;        /* recvmmsg rounds per readiness event (fairness with TCP etc.) */
  uint32_t send_timeout_ms;   /* how long a full send queue may persist before it is dropped */
  uint32_t send_retries;      /* writable wake-ups without progress before the queue is dropped */
  uint32_t stalled;           /* consecutive EAGAINs without progress while waiting */
  uint32_t fault_send_eagain; /* tests only: pretend the next N sendmmsg calls hit EAGAIN */
  int64_t spin_ns;            /* blocking: spin this long before sleeping in recvmmsg (0: never) */
  int32_t hit_percent256;     /* blocking: 256 x % of recent waits done within spin_ns (EWMA) */
  int32_t batch_avg256;       /* blocking: 256 x datagrams per recent receive (EWMA) */
  /* Shared memory, re-derived from the ArrayBuffer by refresh_buffer(). */
  int32_t *meta;
  uint8_t *in;
  uint8_t *out;
  uint8_t *over;
  napi_ref buffer_ref;
  napi_ref callback_ref;
  napi_ref self_ref;          /* keeps the JS handle (and thus this struct) alive while open */
  napi_async_context async_ctx;
  /* Syscall vectors, allocated once. */
  struct mmsghdr *rmsg;
  struct iovec *riov;
  struct mmsghdr *smsg;
  struct iovec *siov;
  struct sockaddr_storage *addr;
  control_t *control;         /* per slot, with pktinfo */
  size_t *control_len;        /* per slot: length of the reply's control message (0: none) */
  uint32_t pend_start;        /* first unsent entry of smsg */
  uint32_t pend_count;        /* unsent entries of smsg */
  int last_errno;             /* last syscall errno counted as an error (for logs) */
  uint64_t counters[C_COUNT];
} sock_t;

/* ---------- small helpers ---------- */

#define NAPI_OK(call)                                   \
  do {                                                  \
    if ((call) != napi_ok) return throw_last(env);      \
  } while (0)

static napi_value throw_last(napi_env env) {
  const napi_extended_error_info *info = NULL;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    napi_get_last_error_info(env, &info);
    napi_throw_error(env, "EUDPBATCH", info && info->error_message ? info->error_message : "N-API call failed");
  }
  return NULL;
}

/* Throws an Error whose code is the libuv name of errno (EADDRINUSE, ...), like node:dgram. */
static napi_value throw_errno(napi_env env, const char *what, int err) {
  int uverr = uv_translate_sys_error(err);
  char message[160];
  snprintf(message, sizeof message, "%s: %s", what, uv_strerror(uverr));
  napi_throw_error(env, uv_err_name(uverr), message);
  return NULL;
}

static int get_u32_prop(napi_env env, napi_value obj, const char *name, uint32_t dflt, uint32_t *out) {
  bool has = false;
  napi_value v;
  napi_valuetype t;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok) return -1;
  if (!has) { *out = dflt; return 0; }
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return -1;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined) { *out = dflt; return 0; }
  if (t != napi_number) return -1;
  return napi_get_value_uint32(env, v, out) == napi_ok ? 0 : -1;
}

static size_t buffer_bytes_needed(const sock_t *s) {
  return (size_t)s->batch * META_WORDS * sizeof(int32_t) + 2 * (size_t)s->batch * s->slot + (size_t)s->batch * s->over_len;
}

/*
 * Re-derives meta/in/out from the shared ArrayBuffer. BOUND: fails unless the buffer is still
 * attached and at least as large as the layout needs; callers then stop touching it.
 * Needs an open handle scope. Returns 0 when the pointers are valid.
 */
static int refresh_buffer(sock_t *s) {
  napi_env env = s->env;
  napi_value ab;
  void *data = NULL;
  size_t len = 0;
  bool detached = true;
  if (napi_get_reference_value(env, s->buffer_ref, &ab) != napi_ok || ab == NULL) return -1;
  if (napi_is_detached_arraybuffer(env, ab, &detached) != napi_ok || detached) return -1;
  if (napi_get_arraybuffer_info(env, ab, &data, &len) != napi_ok || data == NULL) return -1;
  if (len < buffer_bytes_needed(s)) return -1;
  s->meta = (int32_t *)data;
  s->in = (uint8_t *)data + (size_t)s->batch * META_WORDS * sizeof(int32_t);
  s->out = s->in + (size_t)s->batch * s->slot;
  s->over = s->out + (size_t)s->batch * s->slot;
  return 0;
}

/* ---------- closing ---------- */

static void free_sock(sock_t *s) {
  free(s->rmsg);
  free(s->riov);
  free(s->smsg);
  free(s->siov);
  free(s->addr);
  free(s->control);
  free(s->control_len);
  free(s);
}

/* The struct is freed when BOTH the uv handles are closed and the JS handle is gone. */
static void maybe_free(sock_t *s) {
  if (s->open_handles == 0 && s->js_finalized) free_sock(s);
}

static void on_handle_closed(uv_handle_t *h) {
  sock_t *s = (sock_t *)h->data;
  if (--s->open_handles > 0) return;
  /* Both uv handles are closed: no libuv callback can reach s any more. */
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  if (!s->env_gone && s->self_ref != NULL) {
    /* Drop our references; the JS handle's finalizer (finalize_handle) then allows the free. */
    if (s->buffer_ref != NULL) napi_delete_reference(s->env, s->buffer_ref);
    if (s->callback_ref != NULL) napi_delete_reference(s->env, s->callback_ref);
    if (s->async_ctx != NULL) napi_async_destroy(s->env, s->async_ctx);
    napi_ref self = s->self_ref;
    s->self_ref = NULL;
    napi_delete_reference(s->env, self);
  }
  /* With env_gone the environment is being torn down: N-API may no longer be called, and the
   * few hundred bytes are left to process/thread exit unless the finalizer still runs. */
  maybe_free(s);
}

static void env_cleanup(void *arg);

static void begin_close(sock_t *s) {
  if (s->closing) return;
  s->closing = 1;
  s->pend_count = 0;
  if (!s->env_gone) napi_remove_env_cleanup_hook(s->env, env_cleanup, s);
  if (s->blocking) {
    /* No libuv handles: the fd closes now; the struct goes with the JS handle's finalizer. */
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    if (!s->env_gone && s->buffer_ref != NULL) napi_delete_reference(s->env, s->buffer_ref);
    s->buffer_ref = NULL;
    maybe_free(s);
    return;
  }
  uv_poll_stop(&s->poll);
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->poll, on_handle_closed);
  uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

/* The environment is going away (process exit, worker thread end): close without JavaScript. */
static void env_cleanup(void *arg) {
  sock_t *s = (sock_t *)arg;
  s->env_gone = 1;
  begin_close(s);
}

/* The JS handle was garbage-collected; only possible after close completed (self_ref gone),
 * or at environment teardown. */
static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sock_t *s = (sock_t *)data;
  /* A blocking socket's handle is the only owner: a handle dropped without close() closes. */
  if (s->blocking && !s->closing) begin_close(s);
  s->js_finalized = 1;
  maybe_free(s);
}

/* ---------- sending ---------- */

static void poll_cb(uv_poll_t *h, int status, int events);

static void leave_wait(sock_t *s) {
  if (!s->waiting_writable) return;
  s->waiting_writable = 0;
  s->stalled = 0;
  uv_timer_stop(&s->timer);
  uv_poll_start(&s->poll, UV_READABLE, poll_cb);
}

static void drop_pending(sock_t *s) {
  s->counters[C_DROP_SEND_QUEUE] += s->pend_count;
  s->pend_count = 0;
  leave_wait(s);
}

static int flush_pending(sock_t *s);
static int refresh_buffer(sock_t *s);

static void send_timeout_cb(uv_timer_t *t) {
  sock_t *s = (sock_t *)t->data;
  if (s->closing || s->pend_count == 0) return;
  /* Time is up: one last attempt (the socket may be writable and its event merely not yet
   * dispatched), then drop what is left so that reading (and answering) resumes. */
  napi_handle_scope scope;
  if (napi_open_handle_scope(s->env, &scope) == napi_ok) {
    if (refresh_buffer(s) == 0) flush_pending(s);
    napi_close_handle_scope(s->env, scope);
  }
  if (s->pend_count > 0) drop_pending(s);
}

static void enter_wait(sock_t *s) {
  if (s->waiting_writable) return;
  s->waiting_writable = 1;
  /* Stop reading: the in/out areas and addresses of the queued replies must not be reused. */
  uv_poll_start(&s->poll, UV_WRITABLE, poll_cb);
  uv_timer_start(&s->timer, send_timeout_cb, s->send_timeout_ms, 0);
}

/*
 * Sends smsg[pend_start .. pend_start+pend_count). Leaves the rest queued on EAGAIN.
 * Returns FLUSH_DONE (queue empty), FLUSH_STALLED (EAGAIN before sending anything) or
 * FLUSH_PARTIAL (EAGAIN after some progress).
 */
enum { FLUSH_DONE, FLUSH_STALLED, FLUSH_PARTIAL };
static int flush_pending(sock_t *s) {
  int progress = 0;
  while (s->pend_count > 0 && !s->closing) {
    int r;
    if (s->fault_send_eagain > 0) {
      s->fault_send_eagain--;
      r = -1;
      errno = EAGAIN;
    } else {
      r = sendmmsg(s->fd, s->smsg + s->pend_start, s->pend_count, MSG_DONTWAIT);
    }
    if (r > 0) {
      uint32_t done = (uint32_t)r > s->pend_count ? s->pend_count : (uint32_t)r;
      progress = 1;
      s->counters[C_SENT] += done;
      s->pend_start += done;
      s->pend_count -= done;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      s->counters[C_SEND_EAGAIN]++;
      enter_wait(s);
      return progress ? FLUSH_PARTIAL : FLUSH_STALLED;
    }
    /* Any other error concerns the first queued message (sendmmsg reports an error only when
     * nothing was sent): count it, drop that one reply, and go on with the rest. r == 0 is
     * treated the same way so the loop always makes progress. */
    s->counters[C_SEND_ERRORS]++;
    s->last_errno = r < 0 ? errno : EIO;
    s->pend_start++;
    s->pend_count--;
    progress = 1;
  }
  if (s->pend_count == 0) leave_wait(s);
  return FLUSH_DONE;
}

/* Queues the replies JavaScript wrote for slots [0, n) in smsg (pend_start 0, pend_count m). */
static void queue_replies(sock_t *s, uint32_t n) {
  uint32_t m = 0;
  for (uint32_t i = 0; i < n; i++) {
    int32_t *meta = s->meta + (size_t)i * META_WORDS;
    int32_t len = meta[M_OUT_LEN];
    if (len == 0 || meta[M_IN_LEN] == 0) continue; /* no reply, or no datagram to reply to */
    if (len < 0 || (uint32_t)len > s->slot) { /* BOUND: never trust a length from JavaScript */
      s->counters[C_DROP_BAD_REPLY]++;
      continue;
    }
    s->siov[m].iov_base = s->out + (size_t)i * s->slot;
    s->siov[m].iov_len = (size_t)len;
    memset(&s->smsg[m], 0, sizeof s->smsg[m]);
    s->smsg[m].msg_hdr.msg_name = &s->addr[i];
    s->smsg[m].msg_hdr.msg_namelen = s->rmsg[i].msg_hdr.msg_namelen;
    s->smsg[m].msg_hdr.msg_iov = &s->siov[m];
    s->smsg[m].msg_hdr.msg_iovlen = 1;
    if (s->control_len[i] > 0) { /* the source address the query was sent to */
      s->smsg[m].msg_hdr.msg_control = &s->control[i];
      s->smsg[m].msg_hdr.msg_controllen = s->control_len[i];
    }
    m++;
  }
  s->pend_start = 0;
  s->pend_count = m;
}

/* Queues the replies JavaScript wrote for slots [0, n) and sends them. */
static void send_replies(sock_t *s, uint32_t n) {
  queue_replies(s, n);
  flush_pending(s);
}

/* ---------- receiving ---------- */

/* Makes control[i] hold one control message (at most an in6_pktinfo: control_t's size). */
static void put_control(sock_t *s, uint32_t i, int level, int type, const void *data, size_t len) {
  struct cmsghdr *c = (struct cmsghdr *)s->control[i].buf;
  memset(&s->control[i], 0, sizeof s->control[i]);
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(len);
  memcpy(CMSG_DATA(c), data, len); /* BOUND: len <= sizeof(struct in6_pktinfo) */
  s->control_len[i] = CMSG_SPACE(len);
}

/*
 * Datagram i's destination address and interface from its control message, into meta; and the
 * control message of its reply, written over the received one (control[i], control_len[i]).
 * No pktinfo (MSG_CTRUNC, or none sent): the reply goes without one, from the address the kernel
 * picks, and C_NO_PKTINFO counts it.
 */
static void take_pktinfo(sock_t *s, uint32_t i, int32_t *meta) {
  struct msghdr *h = &s->rmsg[i].msg_hdr;
  memset(&meta[M_LOCAL], 0, 16);
  meta[M_IFINDEX] = 0;
  int found = 0;
  struct in_pktinfo reply4;
  struct in6_pktinfo reply6;
  if (!(h->msg_flags & MSG_CTRUNC)) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL && !found; c = CMSG_NXTHDR(h, c)) {
      if (s->family == AF_INET && c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
        struct in_pktinfo got;
        memcpy(&got, CMSG_DATA(c), sizeof got); /* BOUND: length checked above */
        memcpy(&meta[M_LOCAL], &got.ipi_addr, 4);
        meta[M_IFINDEX] = (int32_t)got.ipi_ifindex;
        /* ipi_spec_dst is the local address the packet was for (ipi_addr, or for a broadcast the
         * interface's address); ifindex 0 lets the routing table choose the interface. */
        memset(&reply4, 0, sizeof reply4);
        reply4.ipi_spec_dst = got.ipi_spec_dst;
        found = 4;
      } else if (s->family == AF_INET6 && c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
        struct in6_pktinfo got;
        memcpy(&got, CMSG_DATA(c), sizeof got); /* BOUND: length checked above */
        memcpy(&meta[M_LOCAL], &got.ipi6_addr, 16);
        meta[M_IFINDEX] = (int32_t)got.ipi6_ifindex;
        /* A link-local source address is only meaningful with its interface. */
        memset(&reply6, 0, sizeof reply6);
        reply6.ipi6_addr = got.ipi6_addr;
        reply6.ipi6_ifindex = IN6_IS_ADDR_LINKLOCAL(&got.ipi6_addr) ? got.ipi6_ifindex : 0;
        found = 6;
      }
    }
  }
  if (!found) {
    s->counters[C_NO_PKTINFO]++;
    return;
  }
  if (found == 4) put_control(s, i, IPPROTO_IP, IP_PKTINFO, &reply4, sizeof reply4);
  else put_control(s, i, IPPROTO_IPV6, IPV6_PKTINFO, &reply6, sizeof reply6);
}

/*
 * Validates datagram i of a recvmmsg result and fills its meta words. Returns 1 when it may go to
 * JavaScript; otherwise counts the reason and marks the slot empty (M_IN_LEN = 0).
 */
static int accept_datagram(sock_t *s, uint32_t i) {
  int32_t *meta = s->meta + (size_t)i * META_WORDS;
  const struct msghdr *h = &s->rmsg[i].msg_hdr;
  unsigned int len = s->rmsg[i].msg_len;
  meta[M_IN_LEN] = 0;
  meta[M_OUT_LEN] = 0;
  s->control_len[i] = 0;
  if (h->msg_flags & MSG_TRUNC) { /* BOUND: longer than slot + over_len; only that much was written */
    s->counters[C_DROP_OVERSIZE]++;
    return 0;
  }
  if (len == 0) {
    s->counters[C_DROP_EMPTY]++;
    return 0;
  }
  if (len > s->slot + s->over_len) { /* cannot happen without MSG_TRUNC; checked anyway */
    s->counters[C_DROP_OVERSIZE]++;
    return 0;
  }
  const struct sockaddr_storage *sa = &s->addr[i];
  uint16_t port;
  if (sa->ss_family == AF_INET && s->family == AF_INET && h->msg_namelen >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
    port = ntohs(a4->sin_port);
    meta[M_FAMILY] = 4;
    memcpy(&meta[M_ADDR], &a4->sin_addr, 4); /* BOUND: 4 bytes into 16 */
  } else if (sa->ss_family == AF_INET6 && s->family == AF_INET6 && h->msg_namelen >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
    port = ntohs(a6->sin6_port);
    meta[M_FAMILY] = 6;
    memcpy(&meta[M_ADDR], &a6->sin6_addr, 16); /* BOUND: 16 bytes into 16 */
  } else {
    s->counters[C_DROP_BAD_ADDR]++;
    return 0;
  }
  if (port == 0) { /* cannot be replied to (and is a classic reflection probe) */
    s->counters[C_DROP_PORT0]++;
    return 0;
  }
  if (s->pktinfo) {
    take_pktinfo(s, i, meta);
  } else {
    memcpy(&meta[M_LOCAL], s->local, 16);
    meta[M_IFINDEX] = 0;
  }
  if (len > s->slot) s->counters[C_LARGE]++;
  meta[M_PORT] = port;
  meta[M_IN_LEN] = (int32_t)len;
  return 1;
}

/* Points the receive vectors at the in slots and their `over` parts (after refresh_buffer). */
static void prepare_receive(sock_t *s) {
  for (uint32_t i = 0; i < s->batch; i++) {
    struct iovec *iov = &s->riov[2 * (size_t)i];
    iov[0].iov_base = s->in + (size_t)i * s->slot;
    iov[0].iov_len = s->slot; /* BOUND: the kernel writes at most one slot here... */
    iov[1].iov_base = s->over + (size_t)i * s->over_len;
    iov[1].iov_len = s->over_len; /* ...and at most over_len here */
    s->rmsg[i].msg_hdr.msg_name = &s->addr[i];
    s->rmsg[i].msg_hdr.msg_namelen = sizeof s->addr[i];
    s->rmsg[i].msg_hdr.msg_iov = iov;
    s->rmsg[i].msg_hdr.msg_iovlen = s->over_len > 0 ? 2 : 1;
    s->rmsg[i].msg_hdr.msg_control = s->pktinfo ? &s->control[i] : NULL;
    s->rmsg[i].msg_hdr.msg_controllen = s->pktinfo ? sizeof s->control[i] : 0;
    s->rmsg[i].msg_hdr.msg_flags = 0;
    s->rmsg[i].msg_len = 0;
  }
}

/* Calls the JavaScript batch callback with the slot count. Returns 0 if it returned normally. */
static int call_js(sock_t *s, uint32_t n) {
  napi_env env = s->env;
  napi_value cb, recv, argv[1], result;
  if (napi_get_reference_value(env, s->callback_ref, &cb) != napi_ok || cb == NULL) return -1;
  /* napi_make_callback wants an object receiver (undefined is rejected): use the global. */
  if (napi_get_global(env, &recv) != napi_ok) return -1;
  if (napi_create_uint32(env, n, &argv[0]) != napi_ok) return -1;
  /* napi_make_callback (not napi_call_function): this is an async entry into JavaScript from
   * the event loop, so process.nextTick and promise jobs run afterwards, as for dgram. */
  napi_status st = napi_make_callback(env, s->async_ctx, recv, cb, 1, argv, &result);
  if (st != napi_ok) {
    bool pending = false;
    napi_value exc;
    napi_is_exception_pending(env, &pending);
    if (pending) napi_get_and_clear_last_exception(env, &exc);
    return -1;
  }
  return 0;
}

/* Drains the socket: up to max_rounds x (recvmmsg, one JS call, sendmmsg). */
static void drain(sock_t *s) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(s->env, &scope) != napi_ok) return;
  for (uint32_t round = 0; round < s->max_rounds && !s->closing && s->pend_count == 0; round++) {
    if (refresh_buffer(s) != 0) {
      /* The buffer is unusable: stop reading rather than write to freed memory. */
      s->counters[C_BUFFER_ERRORS]++;
      uv_poll_stop(&s->poll);
      break;
    }
    prepare_receive(s);
    int n = recvmmsg(s->fd, s->rmsg, s->batch, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        s->counters[C_RECV_ERRORS]++;
        s->last_errno = errno;
      }
      break;
    }
    if (n == 0) break;
    uint32_t count = (uint32_t)n > s->batch ? s->batch : (uint32_t)n;
    s->counters[C_RECEIVED] += count;
    uint32_t valid = 0;
    for (uint32_t i = 0; i < count; i++) valid += (uint32_t)accept_datagram(s, i);
    if (valid > 0) {
      s->counters[C_BATCHES]++;
      if (call_js(s, count) != 0) {
        s->counters[C_CALLBACK_ERRORS]++;
        if (s->closing) break;
      } else {
        if (s->closing) break; /* JavaScript closed the socket from the callback */
        /* The callback may have run arbitrary JavaScript: re-validate before reading lengths. */
        if (refresh_buffer(s) != 0) {
          s->counters[C_BUFFER_ERRORS]++;
          uv_poll_stop(&s->poll);
          break;
        }
        send_replies(s, count);
      }
    }
    if ((uint32_t)n < s->batch) break; /* the queue is (nearly) empty: let epoll tell us */
  }
  napi_close_handle_scope(s->env, scope);
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  sock_t *s = (sock_t *)h->data;
  if (s->closing) return;
  if (status < 0) {
    /* epoll failed on this fd (e.g. EBADF): permanent, and level-triggered reporting would
     * spin the loop, so stop watching; the socket answers nothing more (counted, visible). */
    s->counters[C_POLL_ERRORS]++;
    s->last_errno = -status;
    uv_poll_stop(&s->poll);
    return;
  }
  if (s->pend_count > 0) {
    if (events & UV_WRITABLE) {
      napi_handle_scope scope;
      if (napi_open_handle_scope(s->env, &scope) != napi_ok) return;
      /* The out area must still be valid memory before the kernel reads from it. */
      if (refresh_buffer(s) != 0) {
        s->counters[C_BUFFER_ERRORS]++;
        s->counters[C_DROP_SEND_QUEUE] += s->pend_count;
        s->pend_count = 0;
        leave_wait(s);
      } else {
        int rc = flush_pending(s);
        if (rc == FLUSH_PARTIAL) s->stalled = 0;
        /* Writable yet nothing went out, send_retries times in a row: the queue persists. */
        else if (rc == FLUSH_STALLED && ++s->stalled >= s->send_retries) drop_pending(s);
      }
      napi_close_handle_scope(s->env, scope);
    }
    return;
  }
  if (events & UV_READABLE) drain(s);
}

/* ---------- JavaScript API ---------- */

static sock_t *get_sock(napi_env env, napi_value v) {
  void *data = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok) return NULL;
  return (sock_t *)data;
}

/*
 * open(options, buffer, onBatch) -> { handle, port }
 *   options: { host: numeric IPv4/IPv6 string, port, batch, slot, reusePort (0/1),
 *              sendTimeoutMs, sendRetries, maxRounds, faultSendEagain }
 *   buffer: ArrayBuffer of at least batch * (4 * META_WORDS + 2 * slot + MAX_DATAGRAM - slot) bytes
 *   onBatch(count): called with the number of slots filled (some may be empty: M_IN_LEN 0)
 */
/*
 * What open() and openBlocking() share: validates options and buffer, allocates the struct and
 * binds the socket. Returns NULL with a JavaScript exception pending on failure.
 */
static sock_t *open_socket(napi_env env, napi_value options, napi_value buffer, int blocking, uint16_t *bound_port_out) {
  napi_valuetype t;
  bool is_ab = false;
  if (napi_typeof(env, options, &t) != napi_ok || t != napi_object) { napi_throw_type_error(env, "EINVAL", "options must be an object"); return NULL; }
  if (napi_is_arraybuffer(env, buffer, &is_ab) != napi_ok || !is_ab) { napi_throw_type_error(env, "EINVAL", "buffer must be an ArrayBuffer"); return NULL; }

  char host[INET6_ADDRSTRLEN + 1];
  size_t host_len = 0;
  napi_value v;
  if (napi_get_named_property(env, options, "host", &v) != napi_ok ||
      napi_get_value_string_utf8(env, v, host, sizeof host, &host_len) != napi_ok || host_len == 0 || host_len >= sizeof host - 1) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_type_error(env, "EINVAL", "options.host must be a numeric IPv4 or IPv6 address");
    return NULL;
  }
  uint32_t port, batch, slot, reuse, send_timeout, send_retries, max_rounds, fault, receive_timeout, spin;
  if (get_u32_prop(env, options, "port", 0, &port) || port > 65535 ||
      get_u32_prop(env, options, "batch", 64, &batch) || batch == 0 || batch > MAX_BATCH ||
      get_u32_prop(env, options, "slot", 2048, &slot) || slot < MIN_SLOT || slot > MAX_SLOT ||
      get_u32_prop(env, options, "reusePort", 1, &reuse) ||
      get_u32_prop(env, options, "sendTimeoutMs", 200, &send_timeout) ||
      get_u32_prop(env, options, "sendRetries", 8, &send_retries) || send_retries == 0 ||
      get_u32_prop(env, options, "maxRounds", 8, &max_rounds) || max_rounds == 0 ||
      get_u32_prop(env, options, "faultSendEagain", 0, &fault) ||
      get_u32_prop(env, options, "receiveTimeoutMs", 100, &receive_timeout) || receive_timeout == 0 ||
      get_u32_prop(env, options, "spinMicros", 0, &spin) || spin > MAX_SPIN_MICROS || (!blocking && spin != 0) ||
      (blocking && send_timeout == 0) /* SO_SNDTIMEO 0 would mean "wait forever" */) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_range_error(env, "ERANGE", "invalid port, batch, slot, reusePort, sendTimeoutMs (0 with openBlocking), sendRetries, maxRounds, faultSendEagain, receiveTimeoutMs or spinMicros (openBlocking only, at most 1000)");
    return NULL;
  }

  struct sockaddr_storage bind_addr;
  socklen_t bind_len;
  memset(&bind_addr, 0, sizeof bind_addr);
  int family, wildcard;
  uint8_t s_local[16] = { 0 };
  if (strchr(host, ':') != NULL) {
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&bind_addr;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) { napi_throw_type_error(env, "EINVAL", "options.host is not a numeric IPv6 address"); return NULL; }
    bind_len = sizeof *a6;
    family = AF_INET6;
    memcpy(s_local, &a6->sin6_addr, 16);
    wildcard = IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr);
  } else {
    struct sockaddr_in *a4 = (struct sockaddr_in *)&bind_addr;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) { napi_throw_type_error(env, "EINVAL", "options.host is not a numeric IPv4 address"); return NULL; }
    bind_len = sizeof *a4;
    family = AF_INET;
    memcpy(s_local, &a4->sin_addr, 4);
    wildcard = a4->sin_addr.s_addr == htonl(INADDR_ANY);
  }

  sock_t *s = calloc(1, sizeof *s);
  if (s == NULL) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  s->env = env;
  s->fd = -1;
  s->family = family;
  s->pktinfo = wildcard;
  memcpy(s->local, s_local, sizeof s->local);
  s->blocking = blocking;
  s->batch = batch;
  s->slot = slot;
  s->over_len = slot >= MAX_DATAGRAM ? 0 : MAX_DATAGRAM - slot;
  s->max_rounds = max_rounds;
  s->send_timeout_ms = send_timeout;
  s->send_retries = send_retries;
  s->fault_send_eagain = fault;
  s->spin_ns = (int64_t)spin * 1000;
  s->rmsg = calloc(batch, sizeof *s->rmsg);
  s->riov = calloc(2 * (size_t)batch, sizeof *s->riov);
  s->smsg = calloc(batch, sizeof *s->smsg);
  s->siov = calloc(batch, sizeof *s->siov);
  s->addr = calloc(batch, sizeof *s->addr);
  s->control = calloc(batch, sizeof *s->control);
  s->control_len = calloc(batch, sizeof *s->control_len);
  if (!s->rmsg || !s->riov || !s->smsg || !s->siov || !s->addr || !s->control || !s->control_len) {
    free_sock(s);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  {
    void *data = NULL;
    size_t len = 0;
    if (napi_get_arraybuffer_info(env, buffer, &data, &len) != napi_ok || data == NULL || len < buffer_bytes_needed(s)) {
      free_sock(s);
      napi_throw_range_error(env, "ERANGE", "buffer is smaller than batch * (64 + 2 * slot + 65535 - slot) bytes");
      return NULL;
    }
  }

  /* A blocking socket waits in recvmmsg for at most receiveTimeoutMs (so its thread can look at
   * its mailbox while idle) and in sendmmsg for at most sendTimeoutMs (a full send buffer drops
   * the rest of the batch, as the event-loop path does after its timeout). */
  int fd = socket(family, SOCK_DGRAM | (blocking ? 0 : SOCK_NONBLOCK) | SOCK_CLOEXEC, 0);
  if (fd < 0) { int e = errno; free_sock(s); throw_errno(env, "socket", e); return NULL; }
  int one = 1;
  /* SO_REUSEPORT: every cluster worker binds its own socket on the same port and the kernel
   * spreads datagrams over them by flow hash (no handle passing through the primary). */
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int e = errno; close(fd); free_sock(s); throw_errno(env, "setsockopt SO_REUSEPORT", e); return NULL;
  }
  /* Like node:dgram's ipv6Only: an IPv6 listener never also receives IPv4 (mapped) traffic. */
  if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
    int e = errno; close(fd); free_sock(s); throw_errno(env, "setsockopt IPV6_V6ONLY", e); return NULL;
  }
  /* A wildcard socket learns each datagram's destination, to reply from it. */
  if (wildcard && (family == AF_INET ? setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one)
                                     : setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one)) != 0) {
    int e = errno; close(fd); free_sock(s); throw_errno(env, family == AF_INET ? "setsockopt IP_PKTINFO" : "setsockopt IPV6_RECVPKTINFO", e); return NULL;
  }
  if (blocking) {
    struct timeval rcv = { .tv_sec = receive_timeout / 1000, .tv_usec = (receive_timeout % 1000) * 1000 };
    struct timeval snd = { .tv_sec = send_timeout / 1000, .tv_usec = (send_timeout % 1000) * 1000 };
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv) != 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd) != 0) {
      int e = errno; close(fd); free_sock(s); throw_errno(env, "setsockopt SO_RCVTIMEO/SO_SNDTIMEO", e); return NULL;
    }
  }
  if (bind(fd, (struct sockaddr *)&bind_addr, bind_len) != 0) {
    int e = errno; close(fd); free_sock(s); throw_errno(env, "bind", e); return NULL;
  }
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof bound;
  if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) {
    int e = errno; close(fd); free_sock(s); throw_errno(env, "getsockname", e); return NULL;
  }
  *bound_port_out = family == AF_INET ? ntohs(((struct sockaddr_in *)&bound)->sin_port)
                                      : ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
  s->fd = fd;
  return s;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, "EINVAL", "open(options, buffer, onBatch)");
    return NULL;
  }
  napi_valuetype t;
  NAPI_OK(napi_typeof(env, argv[2], &t));
  if (t != napi_function) { napi_throw_type_error(env, "EINVAL", "onBatch must be a function"); return NULL; }
  uint16_t bound_port = 0;
  sock_t *s = open_socket(env, argv[0], argv[1], 0, &bound_port);
  if (s == NULL) return NULL;
  int fd = s->fd;

  uv_loop_t *loop = NULL;
  napi_value handle, resource, resource_name, result, port_value;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == NULL || uv_poll_init(loop, &s->poll, fd) != 0) {
    close(fd);
    free_sock(s);
    napi_throw_error(env, "EUDPBATCH", "cannot register the socket with the event loop");
    return NULL;
  }
  uv_timer_init(loop, &s->timer); /* cannot fail */
  s->open_handles = 2;
  s->js_finalized = 1; /* until the JS handle exists */
  s->poll.data = s;
  s->timer.data = s;
  /* From here on, failures go through begin_close (which frees via the handle close callbacks). */
  if (napi_create_external(env, s, finalize_handle, NULL, &handle) != napi_ok ||
      (s->js_finalized = 0, 0) ||
      napi_create_reference(env, handle, 1, &s->self_ref) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &s->buffer_ref) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &s->callback_ref) != napi_ok ||
      napi_create_object(env, &resource) != napi_ok ||
      napi_create_string_utf8(env, "sitedns:udp-batch", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_async_init(env, resource, resource_name, &s->async_ctx) != napi_ok ||
      napi_add_env_cleanup_hook(env, env_cleanup, s) != napi_ok) {
    begin_close(s);
    return throw_last(env);
  }
  uv_poll_start(&s->poll, UV_READABLE, poll_cb);

  NAPI_OK(napi_create_object(env, &result));
  NAPI_OK(napi_create_uint32(env, bound_port, &port_value));
  NAPI_OK(napi_set_named_property(env, result, "handle", handle));
  NAPI_OK(napi_set_named_property(env, result, "port", port_value));
  return result;
}

/* close(handle): stops reading, drops queued replies, closes the fd once libuv lets go. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = argc >= 1 ? get_sock(env, argv[0]) : NULL;
  if (s == NULL) { napi_throw_type_error(env, "EINVAL", "close(handle)"); return NULL; }
  begin_close(s);
  return NULL;
}

/* ---------- blocking sockets: a worker thread's own loop (serve --udp-threads) ---------- */

/*
 * openBlocking(options, buffer) -> { handle, port }
 *   options as for open(), plus receiveTimeoutMs (default 100). No libuv handle and no callback:
 *   the thread that opened it calls receive() and send() in its own loop, the way gdnsd's UDP
 *   threads wait in recvmmsg. Why: the event loop costs ~15-20 % of a core per batch at 110k QPS
 *   (libuv phases, Node's check phase, napi_make_callback; docs/benchmarks.md, "CPU per query at a fixed rate"),
 *   and a thread that blocks in the kernel pays none of it. A handle belongs to the thread (the
 *   N-API environment) that opened it.
 */
static napi_value js_open_blocking(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], handle, result, port_value;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, "EINVAL", "openBlocking(options, buffer)");
    return NULL;
  }
  uint16_t bound_port = 0;
  sock_t *s = open_socket(env, argv[0], argv[1], 1, &bound_port);
  if (s == NULL) return NULL;
  s->open_handles = 0;
  if (napi_create_external(env, s, finalize_handle, NULL, &handle) != napi_ok) {
    close(s->fd);
    free_sock(s);
    return throw_last(env);
  }
  /* From here on the finalizer owns s (it closes the fd if close() never ran). */
  if (napi_create_reference(env, argv[1], 1, &s->buffer_ref) != napi_ok ||
      napi_add_env_cleanup_hook(env, env_cleanup, s) != napi_ok) {
    begin_close(s);
    return throw_last(env);
  }
  NAPI_OK(napi_create_object(env, &result));
  NAPI_OK(napi_create_uint32(env, bound_port, &port_value));
  NAPI_OK(napi_set_named_property(env, result, "handle", handle));
  NAPI_OK(napi_set_named_property(env, result, "port", port_value));
  return result;
}

static int64_t monotonic_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t); /* vDSO: no syscall */
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/*
 * recvmmsg for receive(): spin, then sleep (serve --udp-spin; docs/benchmarks.md "Spinning
 * before sleeping" has the figures). Why: a thread that sleeps in recvmmsg between two batches
 * pays the scheduler's sleep and wake-up (a third of the process's CPU samples at 60k QPS), while
 * a saturated thread's next datagram is only microseconds away. So it polls with MSG_DONTWAIT
 * for up to spinMicros, yielding the core between tries (on 2 cores, spinning without
 * sched_yield took the CPU the clients needed and gained nothing), and only then sleeps.
 * When, both over about the last 16 receives:
 *   - the thread is behind: its receives took SPIN_MIN_BATCH datagrams or more on average (a
 *     queue builds up between two receives). A thread that keeps up does not spin, so latency
 *     below saturation is that of sleeping: a yielding spinner waits behind whatever took its
 *     core, which measured a p99 of 1.4-1.7 ms instead of 0.7 ms at half of the maximum rate;
 *   - and most waits (SPIN_HIT_PERCENT) ended within spinMicros; a sleep that did counts too
 *     (spinning would have caught it), so bursts with long gaps between them never spin.
 * The averages are integer EWMAs over ~16 receives kept as 256 x the mean (S += 16x - S/16):
 * the truncation leaves them at most 1/16 above the mean. Counters: a hit is a poll that found
 * datagrams after at least one empty try (datagrams already queued are no saving), a miss one
 * that went to sleep. Errors and errno are those of the last recvmmsg.
 */
static int receive_waiting(sock_t *s) {
  if (s->spin_ns == 0) return recvmmsg(s->fd, s->rmsg, s->batch, MSG_WAITFORONE, NULL);
  int64_t start = monotonic_ns();
  int n = -1;
  int done = 0; /* n and errno are final: datagrams, or an error other than "nothing yet" */
  if (s->batch_avg256 >= 256 * SPIN_MIN_BATCH && s->hit_percent256 >= 256 * SPIN_HIT_PERCENT) {
    for (int tries = 0;; tries++) {
      n = recvmmsg(s->fd, s->rmsg, s->batch, MSG_DONTWAIT, NULL);
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        if (n >= 0 && tries > 0) s->counters[C_SPIN_HITS]++;
        done = 1;
        break;
      }
      if (monotonic_ns() - start >= s->spin_ns) break;
      sched_yield();
    }
    if (!done) s->counters[C_SPIN_MISSES]++;
  }
  if (!done) n = recvmmsg(s->fd, s->rmsg, s->batch, MSG_WAITFORONE, NULL);
  int saved = errno;
  int short_wait = n > 0 && monotonic_ns() - start < s->spin_ns;
  s->hit_percent256 += (short_wait ? 16 * 100 : 0) - s->hit_percent256 / 16;
  s->batch_avg256 += 16 * (n > 0 ? n : 0) - s->batch_avg256 / 16;
  errno = saved;
  return n;
}

static sock_t *get_blocking(napi_env env, napi_value v) {
  sock_t *s = get_sock(env, v);
  return s != NULL && s->blocking ? s : NULL;
}

/*
 * receive(handle) -> count: blocks until at least one datagram arrives (MSG_WAITFORONE: then it
 * takes what is queued, up to batch) or receiveTimeoutMs passes. Slots [0, count) are filled as
 * for open()'s callback (M_IN_LEN 0 = dropped here, counted). 0: nothing arrived (timeout or a
 * signal). -1: the socket is closed or its buffer unusable; the loop should end.
 */
static napi_value js_receive(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = argc >= 1 ? get_blocking(env, argv[0]) : NULL;
  if (s == NULL) { napi_throw_type_error(env, "EINVAL", "receive(blocking handle)"); return NULL; }
  int32_t count = -1;
  s->last_count = 0;
  if (!s->closing) {
    if (refresh_buffer(s) != 0) {
      s->counters[C_BUFFER_ERRORS]++;
    } else {
      prepare_receive(s);
      int n = receive_waiting(s);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          s->counters[C_RECV_ERRORS]++;
          s->last_errno = errno;
        }
        /* EBADF and the like are permanent: end the loop rather than spin on them. */
        count = errno == EBADF || errno == ENOTSOCK ? -1 : 0;
      } else {
        uint32_t got = (uint32_t)n > s->batch ? s->batch : (uint32_t)n;
        s->counters[C_RECEIVED] += got;
        uint32_t valid = 0;
        for (uint32_t i = 0; i < got; i++) valid += (uint32_t)accept_datagram(s, i);
        if (valid > 0) s->counters[C_BATCHES]++;
        s->last_count = got;
        count = (int32_t)got;
      }
    }
  }
  NAPI_OK(napi_create_int32(env, count, &result));
  return result;
}

/*
 * send(handle, count): sends the replies JavaScript wrote for slots [0, count) of the last
 * receive() (count larger than what it filled is cut down to it). A send buffer that stays full
 * for sendTimeoutMs drops the rest of the batch (C_DROP_SEND_QUEUE), as the event-loop path does.
 */
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uint32_t count = 0;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = argc >= 2 ? get_blocking(env, argv[0]) : NULL;
  if (s == NULL || napi_get_value_uint32(env, argv[1], &count) != napi_ok) { napi_throw_type_error(env, "EINVAL", "send(blocking handle, count)"); return NULL; }
  if (s->closing) return NULL;
  if (count > s->last_count) count = s->last_count; /* BOUND: only slots receive() filled */
  s->last_count = 0;                                 /* each batch is sent once */
  if (count == 0) return NULL;
  if (refresh_buffer(s) != 0) {
    s->counters[C_BUFFER_ERRORS]++;
    return NULL;
  }
  queue_replies(s, count);
  /* Each blocking sendmmsg may wait up to SO_SNDTIMEO; the batch as a whole gets that long too. */
  struct timespec now, deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += s->send_timeout_ms / 1000;
  deadline.tv_nsec += (long)(s->send_timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000L; }
  while (s->pend_count > 0) {
    int r;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int late = now.tv_sec > deadline.tv_sec || (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec);
    if (s->fault_send_eagain > 0) {
      s->fault_send_eagain--;
      r = -1;
      errno = EAGAIN;
    } else {
      /* Past the deadline only what fits now goes out (MSG_DONTWAIT), the rest is dropped. */
      r = sendmmsg(s->fd, s->smsg + s->pend_start, s->pend_count, late ? MSG_DONTWAIT : 0);
    }
    if (r > 0) {
      uint32_t done = (uint32_t)r > s->pend_count ? s->pend_count : (uint32_t)r;
      s->counters[C_SENT] += done;
      s->pend_start += done;
      s->pend_count -= done;
      continue;
    }
    if (r < 0 && errno == EINTR && !late) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      /* SO_SNDTIMEO passed with the send buffer still full: drop the rest of this batch. */
      s->counters[C_SEND_EAGAIN]++;
      s->counters[C_DROP_SEND_QUEUE] += s->pend_count;
      s->pend_count = 0;
      break;
    }
    /* Other errors concern the first queued reply (as in flush_pending): drop it, go on. */
    s->counters[C_SEND_ERRORS]++;
    s->last_errno = r < 0 ? errno : EIO;
    s->pend_start++;
    s->pend_count--;
  }
  return NULL;
}

/*
 * waitAny(handles, timeoutMs, start) -> index of a blocking handle with a datagram waiting, or -1
 * after timeoutMs. For a thread serving several --listen addresses; the scan starts at `start`
 * so that a busy socket cannot starve the others. receive() on that handle then returns at once.
 */
enum { MAX_WAIT = 64 };
static napi_value js_wait_any(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result, item;
  uint32_t count = 0, timeout = 0, start = 0;
  bool is_array = false;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[0], &count) != napi_ok || count == 0 || count > MAX_WAIT ||
      napi_get_value_uint32(env, argv[1], &timeout) != napi_ok || napi_get_value_uint32(env, argv[2], &start) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "waitAny(array of 1..64 blocking handles, timeoutMs, start)");
    return NULL;
  }
  struct pollfd fds[MAX_WAIT];
  for (uint32_t i = 0; i < count; i++) {
    NAPI_OK(napi_get_element(env, argv[0], i, &item));
    sock_t *s = get_blocking(env, item);
    if (s == NULL) { napi_throw_type_error(env, "EINVAL", "waitAny: not a blocking handle"); return NULL; }
    fds[i].fd = s->closing ? -1 : s->fd; /* poll ignores negative fds */
    fds[i].events = POLLIN;
    fds[i].revents = 0;
  }
  int32_t ready = -1;
  start %= count; /* BOUND: start + k below must not wrap around 2^32 */
  int r = poll(fds, count, timeout > INT32_MAX ? -1 : (int)timeout);
  if (r > 0) {
    for (uint32_t k = 0; k < count && ready < 0; k++) {
      uint32_t i = (start + k) % count;
      if (fds[i].revents != 0) ready = (int32_t)i; /* POLLERR etc. too: receive() reports it */
    }
  }
  NAPI_OK(napi_create_int32(env, ready, &result));
  return result;
}

/*
 * steer(handle, first, count) -> 0 or an errno: which socket of the handle's SO_REUSEPORT group
 * (its port and address) the kernel gives each datagram, as a classic BPF program attached to
 * the group (SO_ATTACH_REUSEPORT_CBPF, Linux >= 4.5; any member's setsockopt sets it for all).
 * The program returns a socket index: the order the sockets joined the group, where a socket that
 * leaves is replaced by the last one. count 1: always `first`; count > 1: a random index in
 * [first, first + count); count 0: an index no group has, for which the kernel falls back to its
 * own distribution (the hash of the source and destination; the same as no program at all).
 * An index the group does not have (a thread that restarts) falls back the same way.
 */
static napi_value js_steer(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  uint32_t first = 0, count = 0;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = argc >= 3 ? get_blocking(env, argv[0]) : NULL;
  if (s == NULL || napi_get_value_uint32(env, argv[1], &first) != napi_ok || napi_get_value_uint32(env, argv[2], &count) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "steer(blocking handle, first, count)");
    return NULL;
  }
  struct sock_filter code[4];
  unsigned short len = 0;
  if (count == 0) {
    code[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
  } else if (count == 1) {
    code[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, first);
  } else {
    code[len++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_RANDOM));
    code[len++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, count);
    code[len++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, first);
    code[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0);
  }
  struct sock_fprog prog = { .len = len, .filter = code };
  int err = s->closing ? EBADF : setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) == 0 ? 0 : errno;
  NAPI_OK(napi_create_int32(env, err, &result));
  return result;
}

/* stats(handle) -> { received, sent, ..., lastErrno } (numbers; exact up to 2^53). */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, v;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = argc >= 1 ? get_sock(env, argv[0]) : NULL;
  if (s == NULL) { napi_throw_type_error(env, "EINVAL", "stats(handle)"); return NULL; }
  NAPI_OK(napi_create_object(env, &result));
  for (int i = 0; i < C_COUNT; i++) {
    NAPI_OK(napi_create_double(env, (double)s->counters[i], &v));
    NAPI_OK(napi_set_named_property(env, result, COUNTER_NAMES[i], v));
  }
  NAPI_OK(napi_create_int32(env, s->last_errno, &v));
  NAPI_OK(napi_set_named_property(env, result, "lastErrno", v));
  return result;
}

/* constants() -> the layout numbers, so JavaScript can assert it mirrors them. */
static napi_value js_constants(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, v;
  NAPI_OK(napi_create_object(env, &result));
#define SET(name, value)                                        \
  NAPI_OK(napi_create_uint32(env, (uint32_t)(value), &v));      \
  NAPI_OK(napi_set_named_property(env, result, name, v));
  SET("META_WORDS", META_WORDS);
  SET("M_IN_LEN", M_IN_LEN);
  SET("M_OUT_LEN", M_OUT_LEN);
  SET("M_PORT", M_PORT);
  SET("M_FAMILY", M_FAMILY);
  SET("M_ADDR", M_ADDR);
  SET("M_LOCAL", M_LOCAL);
  SET("M_IFINDEX", M_IFINDEX);
  SET("MAX_DATAGRAM", MAX_DATAGRAM);
  SET("MAX_BATCH", MAX_BATCH);
  SET("MIN_SLOT", MIN_SLOT);
  SET("MAX_SLOT", MAX_SLOT);
#undef SET
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL },
    { "stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL },
    { "openBlocking", NULL, js_open_blocking, NULL, NULL, NULL, napi_enumerable, NULL },
    { "receive", NULL, js_receive, NULL, NULL, NULL, napi_enumerable, NULL },
    { "send", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL },
    { "waitAny", NULL, js_wait_any, NULL, NULL, NULL, napi_enumerable, NULL },
    { "steer", NULL, js_steer, NULL, NULL, NULL, napi_enumerable, NULL },
    { "constants", NULL, js_constants, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  NAPI_OK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
