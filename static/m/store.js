/* IndexedDB storage of the volunteer page: the queue of visits (client UUIDs) and cached data.
 * Store "visits": {id, campaign_id, assignment_id, address_id, outcome, flat, visited_at,
 *                  state: "queued" | "sent" | "rejected", error}
 * Store "kv": {k, v} (last copy of the assignment's doors, and what was saved for offline use,
 *              per assignment). */
(function (global) {
  "use strict";
  const NAME = "porte-m", VERSION = 1;
  let dbp = null;

  function open() {
    if (dbp) return dbp;
    dbp = new Promise((resolve, reject) => {
      const req = indexedDB.open(NAME, VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains("visits")) {
          const s = db.createObjectStore("visits", { keyPath: "id" });
          s.createIndex("state", "state");
        }
        if (!db.objectStoreNames.contains("kv")) db.createObjectStore("kv", { keyPath: "k" });
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    return dbp;
  }

  async function tx(store, mode, fn) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const t = db.transaction(store, mode);
      const s = t.objectStore(store);
      let result;
      Promise.resolve(fn(s)).then((r) => { result = r; });
      t.oncomplete = () => resolve(result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  }

  function reqp(req) {
    return new Promise((resolve, reject) => {
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  global.PorteStore = {
    putVisit: (v) => tx("visits", "readwrite", (s) => { s.put(v); }),
    deleteVisit: (id) => tx("visits", "readwrite", (s) => { s.delete(id); }),
    allVisits: async () => { const db = await open();
      return reqp(db.transaction("visits").objectStore("visits").getAll()); },
    get: async (k) => { const db = await open();
      const row = await reqp(db.transaction("kv").objectStore("kv").get(k));
      return row ? row.v : undefined; },
    set: (k, v) => tx("kv", "readwrite", (s) => { s.put({ k, v }); }),
    /** Close and delete the whole database (visits and cached turf) from this phone. */
    destroy: async () => {
      if (dbp) {
        try { (await dbp).close(); } catch (e) { /* never opened */ }
        dbp = null;
      }
      await new Promise((resolve) => {
        const req = indexedDB.deleteDatabase(NAME);
        req.onsuccess = req.onerror = req.onblocked = () => resolve();
      });
    },
  };
})(window);
