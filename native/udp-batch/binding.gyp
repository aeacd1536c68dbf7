{
  # The batched UDP fast path. Linux only: install.mjs skips the build elsewhere.
  "targets": [
    {
      "target_name": "udp_batch",
      "sources": ["src/udp_batch.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wshadow", "-Wformat=2", "-Werror=implicit-function-declaration"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["src/udp_batch.c"] }]
      ]
    }
  ]
}
