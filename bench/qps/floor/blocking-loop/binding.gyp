{
  # bench/qps/floor/blocking-loop: built by bench/qps/cpu.mjs into a temporary directory.
  "targets": [
    { "target_name": "blocking_loop", "sources": ["blocking_loop.c"], "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"] }
  ]
}
