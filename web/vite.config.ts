// Vite config of the rnnkit playground (web/). `npm run web` serves it, `npm run build:web` builds it
// into dist/web. The page imports the library's TypeScript sources (../src) directly.
import { fileURLToPath } from 'node:url';
import { createLogger, defineConfig, type Plugin } from 'vite';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

// The library modules the page uses import a few Node built-ins at their top for Node-only functions
// (reading/writing files, starting worker_threads); the page never calls those. Each `node:x` import
// becomes a stub module with the same export names (read from Node's own module at build time), every
// one a function that throws, so no Node code reaches the bundle and a new import in the library
// does not break the build.
function nodeStubs(): Plugin {
  const prefix = '\0rnnkit-node-stub:';
  return {
    name: 'rnnkit-node-stubs',
    enforce: 'pre',
    resolveId(id) {
      return id.startsWith('node:') ? prefix + id.slice(5) : null;
    },
    async load(id) {
      if (!id.startsWith(prefix)) return null;
      const mod = id.slice(prefix.length);
      const real = (await import(`node:${mod}`)) as Record<string, unknown>;
      const names = Object.keys(real).filter((n) => n !== 'default' && /^[A-Za-z_$][\w$]*$/.test(n));
      return [
        `const nope = (n) => function () { throw new Error('rnnkit playground: node:${mod} ' + n + ' is not available in a browser'); };`,
        ...names.map((n) => `export const ${n} = /* @__PURE__ */ nope(${JSON.stringify(n)});`),
        `export default { ${names.join(', ')} };`,
      ].join('\n');
    },
  };
}

// Cross-origin isolation: the wasm kernels use a shared WebAssembly.Memory, which browsers only give
// to isolated pages. Static hosts need the same two headers (without them the page runs on the JS backend).
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

// src/backend/wasm.ts's default kernel folder, new URL('../../wasm/', import.meta.url), is for Node only (the
// page passes the kernels' URLs itself): not a missing asset, so no warning about it.
const logger = createLogger();
const warnOnce = logger.warnOnce.bind(logger);
logger.warnOnce = (msg, opts) => { if (!msg.includes('"../../wasm/"')) warnOnce(msg, opts); };

export default defineConfig({
  customLogger: logger,
  root: here('.'),
  base: './',
  publicDir: here('./public'),
  plugins: [nodeStubs()],
  server: { headers: isolation, fs: { allow: [here('..')] } },
  preview: { headers: isolation },
  worker: { format: 'es', plugins: () => [nodeStubs()] },
  build: {
    outDir: here('../dist/web'),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 2000,
  },
});
