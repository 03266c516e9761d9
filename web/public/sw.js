// The playground's service worker (plain JS, served as is from web/public).
// 1. Offline: the page hands it the list of its files once loaded; they are cached, and every same-origin
//    GET goes to the network first and to the cache when the network fails (so the page reloads offline).
// 2. Cross-origin isolation on hosts that cannot send headers (e.g. static file hosting): responses get
//    COOP/COEP added, which the wasm kernels' shared memory needs (the page reloads once to apply them).
const CACHE = 'rnnkit-playground-v1';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));

self.addEventListener('message', (e) => {
  const m = e.data;
  if (!m || m.type !== 'cache' || !Array.isArray(m.urls)) return;
  const urls = m.urls.filter((u) => typeof u === 'string' && new URL(u).origin === self.location.origin);
  e.waitUntil(caches.open(CACHE).then(async (cache) => {
    for (const u of new Set(urls)) {
      try {
        const res = await fetch(u, { cache: 'no-cache' });
        if (res.ok) await cache.put(u, res);
      } catch { /* offline already: keep what is cached */ }
    }
    e.source?.postMessage({ type: 'cached', count: urls.length });
  }));
});

function isolated(res) {
  if (res.type === 'opaque' || res.status === 0) return res;
  const headers = new Headers(res.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

self.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET' || new URL(req.url).origin !== self.location.origin) return;
  e.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(req);
      if (res.ok) cache.put(req, res.clone()).catch(() => {});
      return isolated(res);
    } catch (err) {
      const hit = await cache.match(req, { ignoreSearch: true });
      if (hit) return isolated(hit);
      throw err;
    }
  })());
});
