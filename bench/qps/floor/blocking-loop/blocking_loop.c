/*
 * bench/qps/floor/blocking-loop (#8): a UDP socket that JavaScript reads by BLOCKING in
 * recvmmsg(2), the way gdnsd's UDP threads wait, instead of being woken by Node's event loop.
 * A bench prototype, not part of sitedns: it measures what the handler costs when a thread's
 * JavaScript loop owns its socket (bench/qps/floor/blocking-loop/loop.mjs, run by cpu.mjs).
 *
 *   open(port, buffer) -> handle     binds 127.0.0.1:port with SO_REUSEPORT (blocking socket)
 *   receive(handle) -> count          blocks until at least one datagram (MSG_WAITFORONE)
 *   send(handle, count)               sends the replies JavaScript wrote (sendmmsg)
 *
 * The buffer has the layout of the batched addon (native/udp-batch): batch x 8 int32 meta words
 * (inLen, outLen, port, family, 16 address bytes), then batch input slots, then batch output
 * slots. Only IPv4; lengths from JavaScript are checked before they become iov lengths.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BATCH = 64, SLOT = 2048, META_WORDS = 8, M_IN_LEN = 0, M_OUT_LEN = 1, M_PORT = 2, M_FAMILY = 3, M_ADDR = 4 };

typedef struct {
  int fd;
  int32_t *meta;
  uint8_t *in;
  uint8_t *out;
  struct mmsghdr rmsg[BATCH], smsg[BATCH];
  struct iovec riov[BATCH], siov[BATCH];
  struct sockaddr_in from[BATCH];
} loop_socket;

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  loop_socket *s = data;
  if (s->fd >= 0) close(s->fd);
  free(s);
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], handle;
  int32_t port;
  void *data = NULL;
  size_t length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &port) != napi_ok ||
      napi_get_arraybuffer_info(env, argv[1], &data, &length) != napi_ok ||
      length < (size_t)BATCH * (META_WORDS * 4 + 2 * SLOT)) {
    napi_throw_error(env, NULL, "open(port, ArrayBuffer of batch * (32 + 2 * slot) bytes)");
    return NULL;
  }
  loop_socket *s = calloc(1, sizeof *s);
  s->meta = data;
  s->in = (uint8_t *)data + BATCH * META_WORDS * 4;
  s->out = s->in + BATCH * SLOT;
  s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(s->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  struct sockaddr_in bind_to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
  inet_pton(AF_INET, "127.0.0.1", &bind_to.sin_addr);
  if (bind(s->fd, (struct sockaddr *)&bind_to, sizeof bind_to) != 0) {
    finalize(env, s, NULL);
    napi_throw_error(env, NULL, "bind failed");
    return NULL;
  }
  napi_create_external(env, s, finalize, NULL, &handle);
  return handle;
}

static loop_socket *socket_of(napi_env env, napi_callback_info info, int32_t *count) {
  size_t argc = 2;
  napi_value argv[2];
  void *s = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_external(env, argv[0], &s) != napi_ok) return NULL;
  if (count != NULL && (argc < 2 || napi_get_value_int32(env, argv[1], count) != napi_ok || *count < 0 || *count > BATCH)) return NULL;
  return s;
}

static napi_value js_receive(napi_env env, napi_callback_info info) {
  loop_socket *s = socket_of(env, info, NULL);
  napi_value result;
  if (s == NULL) return NULL;
  for (int i = 0; i < BATCH; i++) {
    s->riov[i] = (struct iovec){ s->in + (size_t)i * SLOT, SLOT };
    memset(&s->rmsg[i], 0, sizeof s->rmsg[i]);
    s->rmsg[i].msg_hdr.msg_iov = &s->riov[i];
    s->rmsg[i].msg_hdr.msg_iovlen = 1;
    s->rmsg[i].msg_hdr.msg_name = &s->from[i];
    s->rmsg[i].msg_hdr.msg_namelen = sizeof s->from[i];
  }
  int n = recvmmsg(s->fd, s->rmsg, BATCH, MSG_WAITFORONE, NULL);
  if (n < 0) n = 0;
  for (int i = 0; i < n; i++) {
    int32_t *meta = s->meta + i * META_WORDS;
    int truncated = (s->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    meta[M_IN_LEN] = truncated ? 0 : (int32_t)s->rmsg[i].msg_len;
    meta[M_OUT_LEN] = 0;
    meta[M_PORT] = ntohs(s->from[i].sin_port);
    meta[M_FAMILY] = 4;
    memcpy(&meta[M_ADDR], &s->from[i].sin_addr, 4);
  }
  napi_create_int32(env, n, &result);
  return result;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  int32_t count = 0;
  loop_socket *s = socket_of(env, info, &count);
  if (s == NULL) return NULL;
  unsigned m = 0;
  for (int i = 0; i < count; i++) {
    int32_t length = s->meta[i * META_WORDS + M_OUT_LEN];
    if (length <= 0 || length > SLOT) continue;
    s->siov[m] = (struct iovec){ s->out + (size_t)i * SLOT, (size_t)length };
    memset(&s->smsg[m], 0, sizeof s->smsg[m]);
    s->smsg[m].msg_hdr.msg_iov = &s->siov[m];
    s->smsg[m].msg_hdr.msg_iovlen = 1;
    s->smsg[m].msg_hdr.msg_name = &s->from[i];
    s->smsg[m].msg_hdr.msg_namelen = s->rmsg[i].msg_hdr.msg_namelen;
    m++;
  }
  if (m > 0) sendmmsg(s->fd, s->smsg, m, 0);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    { "open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "receive", NULL, js_receive, NULL, NULL, NULL, napi_enumerable, NULL },
    { "send", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
