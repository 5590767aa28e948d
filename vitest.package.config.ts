import { defineConfig } from 'vitest/config';

/** `npm run test:package`: npm pack, npm install -g of the tarball, then the installed command and installer (test/package). */
export default defineConfig({
  test: {
    include: ['test/package/**/*.test.ts'],
    reporters: ['verbose'],
    testTimeout: 120_000,
    hookTimeout: 900_000,
  },
});
