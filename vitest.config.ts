import { defineConfig } from 'vitest/config';

const chaos = process.env.CHAOS_FULL === '1';

export default defineConfig({
  test: {
    include: chaos ? ['test/chaos/**/*.test.ts'] : ['test/**/*.test.ts'],
    // Boot or build a container, or install from the registry: their own commands (test:systemd, test:image, test:package).
    exclude: ['test/live-systemd/**', 'test/image/**', 'test/package/**', '**/node_modules/**'],
    testTimeout: chaos ? 30 * 60_000 : 60_000,
    hookTimeout: 60_000,
    // Integration tests start child daemons and sandbox servers; two cores.
    maxWorkers: chaos ? 1 : 2,
    globalSetup: chaos ? ['test/chaos/summary.ts'] : [],
  },
});
