import { defineConfig } from 'vitest/config';

const chaos = process.env.CHAOS_FULL === '1';

export default defineConfig({
  test: {
    include: chaos ? ['test/chaos/**/*.test.ts'] : ['test/**/*.test.ts'],
    // Boots a container: its own command, npm run test:systemd.
    exclude: ['test/live-systemd/**', '**/node_modules/**'],
    testTimeout: chaos ? 30 * 60_000 : 60_000,
    hookTimeout: 60_000,
    // Integration tests start child daemons and sandbox servers; two cores.
    maxWorkers: chaos ? 1 : 2,
    globalSetup: chaos ? ['test/chaos/summary.ts'] : [],
  },
});
