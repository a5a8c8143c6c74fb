/* The basemap of every map page, drawn in the browser from the service's own vector tiles
 * (/basemap/{z}/{x}/{y}.mvt, same origin) with the vendored protomaps-leaflet renderer.
 *
 * Style: quiet, low-saturation greys and beiges, blue-grey water, and no red anywhere, so that
 * the doors (red circles to do, grey squares done, black diamonds not to knock) stay the
 * strongest marks on the map for every kind of colour vision. Rules cover the layers of public
 * OpenStreetMap builds (Protomaps basemap schema: earth, water, landcover, landuse, roads,
 * buildings, boundaries, places, pois) and those of the demo's placeholder (earth, districts,
 * streets, addresses, places); a layer an archive lacks just draws nothing. */
(function (global) {
  "use strict";

  const C = {
    background: "#eeece6", earth: "#f6f4ef", water: "#b5cbdb", waterLine: "#8fb0c7",
    park: "#e0e6d8", wood: "#d6dfcf", landuse: "#ece8e0", building: "#dedad2",
    buildingLine: "#cbc5ba", road: "#ffffff", roadCase: "#c9c3b8", major: "#fbfaf7",
    majorCase: "#aaa398", path: "#a8a196", rail: "#9c9a96", boundary: "#8a857d",
    district: "#7b8798", text: "#3c3c3c", textSoft: "#66625c", halo: "#ffffff", door: "#a39d92",
  };
  const kind = (f) => f.props.kind || f.props.pmap_kind || "";
  const is = (...kinds) => (z, f) => kinds.includes(kind(f));
  const roadWidth = (base) => (z) => Math.max(0.5, base * Math.pow(2, Math.min(z, 19) - 15));

  function paintRules(P) {
    return [
      { dataLayer: "earth", symbolizer: new P.PolygonSymbolizer({ fill: C.earth }) },
      { dataLayer: "earth", minzoom: 10, filter: is("commune"),
        symbolizer: new P.LineSymbolizer({ color: C.boundary, width: 1.5 }) },
      { dataLayer: "landcover", filter: is("forest", "wood"),
        symbolizer: new P.PolygonSymbolizer({ fill: C.wood }) },
      { dataLayer: "landcover", filter: is("grassland", "scrub", "farmland"),
        symbolizer: new P.PolygonSymbolizer({ fill: C.park, opacity: 0.6 }) },
      { dataLayer: "landuse", filter: is("park", "garden", "grass", "cemetery", "pitch",
                                         "nature_reserve", "wood", "forest", "playground"),
        symbolizer: new P.PolygonSymbolizer({ fill: C.park }) },
      { dataLayer: "landuse", filter: (z, f) => !["park", "garden", "grass", "cemetery", "pitch",
                                                 "nature_reserve", "wood", "forest",
                                                 "playground"].includes(kind(f)),
        symbolizer: new P.PolygonSymbolizer({ fill: C.landuse }) },
      { dataLayer: "water", symbolizer: new P.PolygonSymbolizer({ fill: C.water }) },
      { dataLayer: "water", filter: (z, f) => f.geomType === 2,
        symbolizer: new P.LineSymbolizer({ color: C.waterLine, width: 1.5 }) },
      { dataLayer: "buildings", minzoom: 14,
        symbolizer: new P.PolygonSymbolizer({ fill: C.building, stroke: C.buildingLine,
                                              width: 0.5 }) },
      { dataLayer: "roads", filter: is("path", "other"), minzoom: 14,
        symbolizer: new P.LineSymbolizer({ color: C.path, width: 1, dash: [3, 2] }) },
      { dataLayer: "roads", filter: is("rail"),
        symbolizer: new P.LineSymbolizer({ color: C.rail, width: 1.2, dash: [6, 3] }) },
      { dataLayer: "roads", filter: is("minor_road"),
        symbolizer: new P.LineSymbolizer({ color: C.roadCase, width: roadWidth(5) }) },
      { dataLayer: "roads", filter: is("major_road", "highway", "medium_road"),
        symbolizer: new P.LineSymbolizer({ color: C.majorCase, width: roadWidth(8) }) },
      { dataLayer: "roads", filter: is("minor_road"),
        symbolizer: new P.LineSymbolizer({ color: C.road, width: roadWidth(3.6) }) },
      { dataLayer: "roads", filter: is("major_road", "highway", "medium_road"),
        symbolizer: new P.LineSymbolizer({ color: C.major, width: roadWidth(6) }) },
      { dataLayer: "boundaries",
        symbolizer: new P.LineSymbolizer({ color: C.boundary, width: 1, dash: [4, 3] }) },
      // the placeholder's polling stations and door points (public data, not the turf's doors)
      { dataLayer: "districts",
        symbolizer: new P.LineSymbolizer({ color: C.district, width: 1, dash: [5, 4] }) },
      { dataLayer: "addresses", minzoom: 15,
        symbolizer: new P.CircleSymbolizer({ radius: 1.6, fill: C.door }) },
    ];
  }

  function labelRules(P) {
    const text = (opts) => new P.CenteredTextSymbolizer(Object.assign({
      fill: C.text, stroke: C.halo, width: 3, fontFamily: "sans-serif", fontWeight: 600,
    }, opts));
    return [
      { dataLayer: "places", filter: is("locality", "city", "town", "village", "neighbourhood",
                                        "macrohood", "suburb"),
        symbolizer: text({ labelProps: ["name:fr", "name"], fontSize: 15, fontWeight: 700 }) },
      { dataLayer: "roads", minzoom: 14,
        symbolizer: new P.LineLabelSymbolizer({ labelProps: ["name:fr", "name"], fill: C.text,
                                                stroke: C.halo, width: 3, fontSize: 12,
                                                fontFamily: "sans-serif", fontWeight: 600 }) },
      { dataLayer: "streets", minzoom: 17,
        symbolizer: text({ labelProps: ["name"], fontSize: 12, maxLineChars: 18 }) },
      { dataLayer: "addresses", minzoom: 18,
        symbolizer: text({ labelProps: ["housenumber"], fill: C.textSoft, fontSize: 10,
                           fontWeight: 400, width: 2 }) },
      { dataLayer: "pois", minzoom: 16, filter: is("school", "townhall", "post_office",
                                                   "library", "place_of_worship"),
        symbolizer: text({ labelProps: ["name:fr", "name"], fill: C.textSoft, fontSize: 11,
                           fontWeight: 400 }) },
      { dataLayer: "water", minzoom: 13,
        symbolizer: text({ labelProps: ["name:fr", "name"], fill: "#46627a", fontSize: 11,
                           fontStyle: "italic", fontWeight: 400 }) },
    ];
  }

  /** URL of one data tile of the vector basemap (the archive's version makes it immutable). */
  function tileUrl(bm, z, x, y) {
    return bm.url.replace("{z}", z).replace("{x}", x).replace("{y}", y);
  }

  /** Data tiles (z, x, y) the renderer asks for to show `bounds` at display zooms
   * [zmin, zmax]: protomaps-leaflet draws display zoom z from data zoom z - 1, and over-zooms
   * the archive's last zoom beyond. */
  function tilesFor(bm, bounds, zmin, zmax) {
    const out = [];
    const seen = new Set();
    const lo = Math.max(bm.minzoom, zmin - 1), hi = Math.min(bm.maxzoom, zmax - 1);
    for (let z = lo; z <= hi; z++) {
      const n = 1 << z;
      const tx = (lon) => Math.min(n - 1, Math.max(0, Math.floor((lon + 180) / 360 * n)));
      const ty = (lat) => {
        const r = lat * Math.PI / 180;
        const y = (1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2 * n;
        return Math.min(n - 1, Math.max(0, Math.floor(y)));
      };
      for (let x = tx(bounds.getWest()); x <= tx(bounds.getEast()); x++) {
        for (let y = ty(bounds.getNorth()); y <= ty(bounds.getSouth()); y++) {
          const key = `${z}/${x}/${y}`;
          if (!seen.has(key)) { seen.add(key); out.push({ z, x, y, url: tileUrl(bm, z, x, y) }); }
        }
      }
    }
    return out;
  }

  /** Add the basemap the service offers (vector, its own) or, when set explicitly, a raster
   * layer; with neither, call onMissing (doors and turfs are drawn by the pages themselves). */
  function add(map, cfg, onMissing) {
    const bm = cfg && cfg.basemap;
    if (bm && global.protomapsL) {
      const P = global.protomapsL;
      const attribution = Porte.escapeHtml(bm.attribution || "");
      const layer = P.leafletLayer({
        url: bm.url, maxDataZoom: bm.maxzoom, maxZoom: 20, paintRules: paintRules(P),
        labelRules: labelRules(P), backgroundColor: C.background, attribution,
      });
      layer.addTo(map);
      return layer;
    }
    if (cfg && cfg.raster_url) {
      const layer = L.tileLayer(cfg.raster_url, {
        attribution: Porte.escapeHtml(cfg.raster_attribution || ""), maxZoom: 19,
      });
      let warned = false;
      layer.on("tileerror", () => { if (!warned && onMissing) { warned = true; onMissing(); } });
      layer.addTo(map);
      return layer;
    }
    if (onMissing) onMissing();
    return null;
  }

  global.PorteBasemap = { add, tilesFor, tileUrl, colours: C };
})(window);
