import { defineConfig } from 'vitest/config';

/** `npm run test:systemd`: the installed service under a live systemd, in a container it boots (test/live-systemd). */
export default defineConfig({
  test: {
    include: ['test/live-systemd/**/*.test.ts'],
    // One container; its checks build on each other in file order.
    maxWorkers: 1,
    // One line per check, passed or not.
    reporters: ['verbose'],
    testTimeout: 180_000,
    hookTimeout: 900_000,
  },
});
