// Builds the console into the Python package, so `pip install` ships it and no CDN is needed.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/console/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: '../src/traitsync/console/static',
    emptyOutDir: true,
    chunkSizeWarningLimit: 200,
  },
});
