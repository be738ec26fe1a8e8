/* The counter page: search a parcel or an address at a date, draw the perimeters and the parcel
   on the map, show the answer beside it, link the note; permalinks ?parcelle=…&date=… or
   ?adresse=…&date=…. Every text from data is put in the page as text nodes, never as HTML. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("config").textContent);
  var base = config.base || "";  // the prefix of `ort serve --root-path`, behind a reverse proxy
  var form = document.getElementById("form-recherche");
  var input = document.getElementById("q");
  var dateInput = document.getElementById("date");
  var communeInput = document.getElementById("commune");
  var etat = document.getElementById("etat");
  var resultat = document.getElementById("resultat");
  var PARCEL = /^\s*(\d[\dAB]\d{3}\s*)?(\d{3}\s*)?[A-Z0-9]{1,2}[\s\-\/]*\d{1,4}\s*$/i;

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function pct(x) {
    return (x * 100).toLocaleString("fr-FR", { minimumFractionDigits: 1, maximumFractionDigits: 1 }) + "\u00a0%";
  }
  function m2(x) { return Math.round(x).toLocaleString("fr-FR") + "\u00a0m²"; }
  function dateFr(iso) { if (!iso) return ""; var p = iso.split("-"); return p[2] + "/" + p[1] + "/" + p[0]; }

  /* --- map ------------------------------------------------------------------------------- */
  var map = L.map("carte", { zoomControl: true, keyboard: true }).setView([46.6, 2.4], 5);
  L.control.scale({ imperial: false }).addTo(map);
  document.getElementById("mention").textContent = config.mention;
  var perimeterLayer = L.layerGroup().addTo(map);
  var parcelLayer = L.layerGroup().addTo(map);
  var control = L.control.layers(null, { "Périmètres": perimeterLayer, "Parcelle": parcelLayer }).addTo(map);

  function styleOf(conv, feature) {
    var p = feature.properties;
    if (p.type === "ort") return { color: "#444", weight: 1, dashArray: "4 4", fill: false };
    var s = conv.styles[p.perimetre_id] || { color: "#377eb8", weight: 2 };
    return { color: s.color, weight: s.weight, dashArray: s.dashArray, fillColor: s.fillColor || s.color, fillOpacity: 0.12 };
  }
  function drawPerimeters(day) {
    perimeterLayer.clearLayers();
    var bounds = [];
    return Promise.all(config.conventions.filter(function (c) { return c.perimetres; }).map(function (conv) {
      var url = base + "/ogc/collections/" + encodeURIComponent(conv.perimetres) + "/items?limit=1000&datetime=" + encodeURIComponent(day);
      return fetch(url).then(function (r) { return r.json(); }).then(function (fc) {
        var layer = L.geoJSON(fc, {
          style: function (f) { return styleOf(conv, f); },
          onEachFeature: function (f, lyr) { lyr.bindTooltip(el("span", f.properties.nom)); }
        });
        layer.addTo(perimeterLayer);
        if (fc.features.length) bounds.push(layer.getBounds());
      });
    })).then(function () { return bounds; });
  }
  var around = L.layerGroup().addTo(map);
  control.addOverlay(around, "Parcelles (statut dans l'ORT)");
  var shownDay = null;
  function drawAround() {
    around.clearLayers();
    if (map.getZoom() < 16 || !shownDay) return;
    var b = map.getBounds();
    var box = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); }).join(",");
    config.conventions.filter(function (c) { return c.parcelles; }).forEach(function (conv) {
      var url = base + "/ogc/collections/" + encodeURIComponent(conv.parcelles) + "/items?limit=1000&bbox=" + box +
        "&datetime=" + encodeURIComponent(shownDay);
      fetch(url).then(function (r) { return r.json(); }).then(function (fc) {
        L.geoJSON(fc, {
          style: function (f) {
            return { color: "#777", weight: 0.6, fillColor: config.statuts[f.properties.statut] || "#eee", fillOpacity: 0.45 };
          },
          onEachFeature: function (f, lyr) { lyr.bindTooltip(el("span", f.properties.idu + " — " + f.properties.statut)); }
        }).addTo(around);
      });
    });
  }
  map.on("moveend", drawAround);
  function drawParcel(conventionId, idu, day, statut) {
    shownDay = day;
    parcelLayer.clearLayers();
    var conv = config.conventions.filter(function (c) { return c.id === conventionId; })[0];
    if (!conv || !conv.parcelles) return;
    var url = base + "/ogc/collections/" + encodeURIComponent(conv.parcelles) + "/items/" + encodeURIComponent(idu) + "?datetime=" + encodeURIComponent(day);
    fetch(url).then(function (r) { return r.ok ? r.json() : null; }).then(function (f) {
      if (!f) return;
      var colour = config.statuts[statut] || "#0033cc";
      var layer = L.geoJSON(f, { style: { color: "#0033cc", weight: 3, fillColor: colour, fillOpacity: 0.7 } });
      layer.bindTooltip(el("span", idu));
      layer.addTo(parcelLayer);
      map.fitBounds(layer.getBounds(), { maxZoom: 18, padding: [40, 40] });
    });
  }

  /* --- answer ---------------------------------------------------------------------------- */
  function problemText(body, status) {
    if (body && body.detail) return body.detail + (body.correction ? " — " + body.correction : "");
    return "erreur " + status;
  }
  function showProblem(body, status) {
    resultat.replaceChildren();
    etat.textContent = "";
    var p = el("p", problemText(body, status), "erreur");
    resultat.appendChild(p);
    etat.textContent = "Pas de réponse : " + problemText(body, status);
  }
  function perimeterTable(verif) {
    var table = el("table");
    table.appendChild(el("caption", "Périmètres en vigueur — version « " + (verif.version || "?") + " » du " + dateFr(verif.version_date)));
    var head = el("tr");
    ["Périmètre", "Statut", "Part", "Surface dedans"].forEach(function (h) { var th = el("th", h); th.scope = "col"; head.appendChild(th); });
    var thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
    var tbody = el("tbody");
    verif.parcelles[0].perimetres.forEach(function (p) {
      var tr = el("tr");
      var th = el("th", p.nom); th.scope = "row"; tr.appendChild(th);
      tr.appendChild(el("td", p.statut));
      tr.appendChild(el("td", pct(p.part)));
      tr.appendChild(el("td", m2(p.surface_m2)));
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    return table;
  }
  function showAnswer(answer, day) {
    resultat.replaceChildren();
    var verif = answer.verification;
    var title = el("h3", "Parcelle " + answer.idu + " au " + dateFr(answer.date));
    resultat.appendChild(title);
    var statut = null;
    if (verif && verif.parcelles && verif.parcelles.length) {
      var parcel = verif.parcelles[0];
      var ort = parcel.perimetres.filter(function (p) { return p.perimetre_id === "ort"; })[0];
      statut = ort ? ort.statut : null;
      resultat.appendChild(el("p", verif.convention + (verif.fictif ? " (convention fictive)" : "") +
        " — contenance " + m2(parcel.contenance || 0) + (ort ? " — ORT : " + ort.statut + " (" + pct(ort.part) + ")" : "")));
      resultat.appendChild(perimeterTable(verif));
      (verif.avertissements || []).forEach(function (w) { resultat.appendChild(el("p", "Avertissement : " + w, "erreur")); });
    } else if (answer.remarque) {
      resultat.appendChild(el("p", answer.remarque));
    }
    var note = el("a", "Note de renseignement (PDF)");
    note.href = base + "/api/parcelles/" + encodeURIComponent(answer.idu) + "/note.pdf?date=" + encodeURIComponent(day);
    note.id = "lien-note";
    if (verif) { var pn = el("p"); pn.appendChild(note); resultat.appendChild(pn); }
    resultat.appendChild(el("h3", "Dispositifs"));
    (answer.eligibilite.resultats || []).forEach(function (target) {
      target.reponses.forEach(function (r) {
        var box = el("div", null, "dispositif");
        var h = el("h4", r.dispositif + " : ");
        h.appendChild(el("span", r.verdict_libelle || r.verdict, "verdict verdict-" + r.verdict));
        box.appendChild(h);
        box.appendChild(el("p", r.motif));
        box.appendChild(el("p", "Référence : " + r.reference));
        if (r.periode) box.appendChild(el("p", "Période : " + r.periode));
        if (r.mises_en_garde && r.mises_en_garde.length) {
          var ul = el("ul");
          r.mises_en_garde.forEach(function (c) { ul.appendChild(el("li", c)); });
          box.appendChild(ul);
        }
        resultat.appendChild(box);
      });
    });
    etat.textContent = "Réponse pour la parcelle " + answer.idu + (statut ? " : " + statut + " dans l'ORT" : "") + ".";
    drawParcel(answer.convention_id, answer.idu, day, statut);
  }
  function showCandidates(body) {
    resultat.replaceChildren();
    var a = body.adresse;
    resultat.appendChild(el("p", a.message || "Adresse non placée sur une parcelle."));
    if (a.candidats && a.candidats.length) {
      var ul = el("ul");
      a.candidats.forEach(function (c) {
        var li = el("li");
        var b = el("button", c.libelle); b.type = "button";
        b.addEventListener("click", function () { input.value = c.libelle; search(); });
        li.appendChild(b); ul.appendChild(li);
      });
      resultat.appendChild(el("p", "Précisez l'adresse :"));
      resultat.appendChild(ul);
    }
    etat.textContent = "Adresse ambiguë ou introuvable : " + (a.message || "");
  }

  function search() {
    var q = input.value.trim();
    var day = dateInput.value || config.aujourdhui;
    if (!q) return;
    var isParcel = PARCEL.test(q);
    var url = isParcel
      ? base + "/api/parcelles/" + encodeURIComponent(q) + "?date=" + encodeURIComponent(day) +
        (communeInput.value.trim() ? "&commune=" + encodeURIComponent(communeInput.value.trim()) : "")
      : base + "/api/adresses?q=" + encodeURIComponent(q) + "&date=" + encodeURIComponent(day);
    etat.textContent = "Recherche en cours…";
    drawPerimeters(day);
    fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, status: r.status, body: body }; });
    }).then(function (res) {
      if (!res.ok) { showProblem(res.body, res.status); return; }
      var answer = isParcel ? res.body : res.body.reponse;
      var params = new URLSearchParams();
      if (answer) {
        params.set("parcelle", answer.idu);
        showAnswer(answer, day);
      } else {
        params.set("adresse", q);
        showCandidates(res.body);
      }
      params.set("date", day);
      history.replaceState(null, "", base + "/?" + params.toString());
    }).catch(function () { showProblem(null, "réseau"); });
  }

  form.addEventListener("submit", function (ev) { ev.preventDefault(); search(); });
  var fileForm = document.getElementById("form-fichier");
  fileForm.addEventListener("submit", function () {
    fileForm.action = base + "/api/verifications?date=" + encodeURIComponent(dateInput.value || config.aujourdhui) +
      "&format=" + encodeURIComponent(document.getElementById("format").value);
    document.getElementById("etat-fichier").textContent = "Fichier envoyé : le tableau va être téléchargé.";
  });

  var params = new URLSearchParams(location.search);
  dateInput.value = params.get("date") || config.aujourdhui;
  communeInput.value = params.get("commune") || config.commune_par_defaut || "";
  drawPerimeters(dateInput.value).then(function (bounds) {
    if (bounds.length && !params.get("parcelle")) {
      var b = bounds[0]; bounds.slice(1).forEach(function (x) { b.extend(x); });
      map.fitBounds(b);
    }
  });
  var start = params.get("parcelle") || params.get("adresse");
  if (start) { input.value = start; search(); }
})();
