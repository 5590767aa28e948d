import { defineConfig } from 'vitest/config';

/** `npm run test:image`: the Containerfile built and run with podman (test/image). */
export default defineConfig({
  test: {
    include: ['test/image/**/*.test.ts'],
    // One image, one container; its checks build on each other in file order.
    maxWorkers: 1,
    reporters: ['verbose'],
    testTimeout: 120_000,
    // The first run makes the base images with debootstrap and builds the image (a few minutes).
    hookTimeout: 1_800_000,
  },
});
