/**
 * The end-to-end serve tests on the node:dgram UDP path, forced (the tests run on both
 * paths; test/e2e/serve.test.ts itself runs on the default, which is the batched path when the
 * addon is built, and serve-batched.test.ts forces that one).
 */
process.env.SITEDNS_UDP_PATH = 'dgram';
await import('../e2e/serve.test.js');
