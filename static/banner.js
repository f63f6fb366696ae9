// consentmw banner: texts, policy and (unless the page is shared-cacheable) the visitor's state come in the page's #consentmw-data block.
(() => {
  "use strict";
  if (window.consentmw) return;
  const d = document;
  const prefix = location.origin + new URL(d.currentScript.src).pathname.replace(/\/banner\.js$/, "");
  const showButton = d.documentElement.dataset.consentmwButton !== "off";
  const INERT = "[data-consentmw-category],script[type='text/plain'],[data-cookieconsent],[class*='optanon-category-'],[data-name][data-src]";
  let policy, state, lang, langs, ui, banner, dialog, fab, opener, names;
  let running = Promise.resolve();

  const el = (html) => {
    const t = d.createElement("template");
    t.innerHTML = html; // constant markup only, well-formed XML for XHTML pages: every text below goes in with textContent
    return t.content.firstElementChild;
  };
  const t = (key) => policy.texts[key] || "";
  // no prototype
  const bare = (o) => Object.setPrototypeOf(o || {}, null);
  const call = (path, init) =>
    fetch(prefix + path, { credentials: "same-origin", headers: { Accept: "application/json", "Content-Type": "application/json" }, ...init })
      .then((r) => (r.ok ? r.json() : Promise.reject(r)))
      .then((o) => (bare(o.choices), o));

  // null when a name means nothing to this policy: such a tag stays inert.
  function categoriesOf(node) {
    const data = node.dataset;
    if (data.consentmwCategory) return data.consentmwCategory.split(" ");
    const onetrust = /optanon-category-([\w-]+)/.exec(node.className);
    const raw = (data.category || data.cookieconsent || (onetrust && onetrust[1].replace(/-/g, ",")) || data.name || "").replace("!", "");
    const found = raw ? raw.split(",").map((name) => names[name.trim().toLowerCase()]) : [];
    return found.length && found.every(Boolean) ? found : null;
  }

  function activate() {
    running = running.then(async () => {
      for (const node of d.querySelectorAll(INERT)) {
        const cats = categoriesOf(node);
        const data = node.dataset;
        // "!x" (vanilla-cookieconsent): runs when x is refused
        if (!cats || (/^!/.test(data.service || data.category) ? !state.decided || cats.some((c) => state.choices[c]) : !cats.every((c) => state.choices[c]))) continue;
        const src = data.consentmwSrc || data.src || data.cookieblockSrc;
        if (node.localName !== "script") {
          if (data.consentmwSrcset && !node.hasAttribute("srcset")) node.srcset = data.consentmwSrcset;
          if (src && !node.hasAttribute("src")) node.src = src;
          continue;
        }
        if (node.type !== "text/plain") continue;
        // Changing the type does not run a script: only a new element does.
        const live = d.createElement("script");
        for (const a of node.attributes) {
          if (!/^(type|src|data-(consentmw-)?(src|type))$/.test(a.name)) live.setAttribute(a.name, a.value);
        }
        live.type = data.consentmwType || data.type || "";
        live.nonce = node.nonce;
        live.text = node.text;
        if (src) live.src = src;
        // Not async: the next script waits for this one, as in the page.
        live.async = node.hasAttribute("async");
        // Listeners, not onload=: the tag's own onload attribute (copied above) must still run.
        const done = src && !live.async && new Promise((resolve) => ["load", "error"].forEach((e) => live.addEventListener(e, resolve)));
        node.replaceWith(live);
        await done;
      }
    });
    return running;
  }

  function gtag() {
    (window.dataLayer = window.dataLayer || []).push(arguments);
  }

  function apply() {
    // The server switched Google Analytics off for a refused visitor; a grant switches it back on.
    for (const c of policy.categories) {
      for (const s of c.services) if (s.id === "google-analytics" && state.choices[c.id]) for (const id of s.ids || []) window["ga-disable-" + id] = false;
    }
    const mode = policy.google_consent_mode;
    if (mode && mode.enabled) {
      const update = {};
      for (const [signal, cat] of Object.entries(mode.signals)) update[signal] = state.choices[cat] ? "granted" : "denied";
      gtag("consent", "update", update);
    }
    return activate();
  }

  function render() {
    ui.lang = fab.lang = lang;
    fab.textContent = t("reopen");
    for (const node of ui.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
    for (const node of ui.querySelectorAll("select")) {
      node.value = lang;
      node.ariaLabel = t("language_switch");
    }
    dialog.querySelector(".cmw-gpc").hidden = !state.gpc;
    for (const a of dialog.querySelectorAll("[data-p]")) a.href = prefix + a.dataset.p + "?lang=" + lang;
    const list = dialog.querySelector("ul");
    list.textContent = "";
    for (const cat of policy.categories) {
      const row = el(
        '<li><label><input type="checkbox" role="switch"/><span></span><b></b></label><p></p><p></p></li>'
      );
      const [input, name, tag] = row.querySelector("label").children;
      const [desc, cons] = row.querySelectorAll("p");
      input.name = "category";
      input.value = cat.id;
      const refusedByGpc = state.gpc && cat.gpc;
      input.checked = cat.required || (!refusedByGpc && (state.choices[cat.id] || (!state.decided && cat.default)));
      input.disabled = cat.required || refusedByGpc;
      input.setAttribute("aria-describedby", (desc.id = "cmw-d-" + cat.id));
      name.textContent = cat.name;
      tag.textContent = cat.required ? t("always_on") : "";
      desc.textContent = cat.description;
      cons.textContent = cat.consequence;
      list.append(row);
    }
    fab.hidden = !showButton || !state.decided;
  }

  function say(key) {
    for (const node of ui.querySelectorAll(".cmw-msg")) node.textContent = key ? t(key) : "";
  }

  function open() {
    if (dialog.open) return;
    opener = d.activeElement;
    render();
    say("");
    dialog.showModal();
  }

  async function choose(body, method) {
    const before = state.choices;
    body.method = method;
    body.lang = lang;
    say("");
    try {
      state = await call("", { method: "POST", body: JSON.stringify(body) });
    } catch (e) {
      say("save_failed");
      return;
    }
    // Trackers already running cannot be stopped in place: a reload starts the page without them.
    if (Object.keys(before).some((c) => before[c] && !state.choices[c])) return location.reload();
    banner.hidden = true;
    if (dialog.open) dialog.close();
    render();
    window.dispatchEvent(new CustomEvent("consentmw:change", { detail: api.choices }));
    await apply();
  }

  function onClick(event) {
    const action = event.target.closest("[data-a]");
    if (!action) return;
    const method = dialog.contains(action) ? "settings" : "banner";
    switch (action.dataset.a) {
      case "all":
      case "necessary":
      case "do-not-sell":
        return choose({ accept: action.dataset.a }, method);
      case "save": {
        const choices = {};
        // Locked: required, or refused by GPC; the server decides those.
        for (const input of dialog.querySelectorAll("input")) if (!input.disabled) choices[input.value] = input.checked;
        return choose({ choices }, method);
      }
      case "close":
        return dialog.close();
      default:
        return open();
    }
  }

  function trapFocus(event) {
    const stops = [...dialog.querySelectorAll("button,input,a[href]")].filter((n) => !n.disabled && n.getClientRects().length);
    if (event.shiftKey) stops.reverse();
    if (event.key === "Tab" && d.activeElement === stops[stops.length - 1]) {
      event.preventDefault();
      stops[0].focus();
    }
  }

  function build() {
    const buttons =
      '<div class="cmw-acts"><button class="cmw-b" data-a="all" data-t="accept_all"></button>' +
      '<button class="cmw-b" data-a="necessary" data-t="reject_all"></button>';
    const lang = '<select class="cmw-lang"></select>';
    ui = el(
      '<div class="cmw"><section class="cmw-banner" aria-labelledby="cmw-bt"><h2 id="cmw-bt" data-t="banner_title"></h2>' +
        '<p data-t="banner_body"></p>' + buttons +
        '<button class="cmw-b cmw-2" data-a="open" data-t="settings"></button>' + lang + '</div><p class="cmw-msg" role="status"></p></section></div>'
    );
    dialog = el(
      '<dialog class="cmw-dialog" aria-labelledby="cmw-dt"><div class="cmw-head"><h2 id="cmw-dt" data-t="settings_title"></h2>' + lang +
        '<button class="cmw-lang" data-a="close" data-t="close"></button></div>' +
        '<p class="cmw-gpc" data-t="gpc_notice"></p><ul></ul><p class="cmw-note" data-t="withdrawal_notice"></p>' +
        buttons + '<button class="cmw-b cmw-2" data-a="save" data-t="save"></button></div>' +
        '<p class="cmw-msg" role="status"></p><p class="cmw-links"><a data-t="browser_guide_link" data-p="/browsers"></a> <a data-t="cookies_link" data-p="/cookies"></a> <a data-t="opt_out_link"></a></p></dialog>'
    );
    fab = el('<button class="cmw cmw-fab" data-a="open" hidden=""></button>');
    const optOut = dialog.querySelector("[data-t=opt_out_link]");
    if (policy.categories.some((c) => c.services.some((s) => s.id === "google-analytics"))) optOut.href = prefix + "/opt-out";
    else optOut.remove();
    banner = ui.firstChild;
    for (const n of banner.querySelectorAll("[data-t]")) for (const k in n.dataset) n.dataset[k] = (state.swap || {})[n.dataset[k]] || n.dataset[k];
    banner.hidden = state.decided;
    ui.append(dialog);
    for (const select of ui.querySelectorAll("select")) {
      if (langs.length < 2) select.remove();
      for (const [tag, name] of langs) select.append(Object.assign(new Option(name, tag), { lang: tag }));
    }
    for (const node of [ui, fab]) node.addEventListener("click", onClick);
    ui.addEventListener("change", (event) => event.target.localName === "select" && relang(event.target.value));
    dialog.addEventListener("keydown", trapFocus);
    dialog.addEventListener("close", () => {
      const back = opener && opener.getClientRects().length ? opener : fab.hidden ? null : fab;
      if (back) back.focus();
    });
    d.body.prepend(ui);
    d.body.append(fab);
  }

  const api = {
    get choices() {
      return state ? { ...state.choices } : {};
    },
    get decided() {
      return !!(state && state.decided);
    },
    allows: (category) => !!(state && names && state.choices[names[String(category).toLowerCase()]]),
    open: () => api.ready.then(open),
  };

  // The last block: markup the site lets others write comes before the one consentmw puts before </body>.
  const inline = [...d.querySelectorAll("#consentmw-data")].pop();
  const policyFor = (tag) => call("/policy?lang=" + encodeURIComponent(tag || ""));

  async function relang(tag) {
    try {
      ({ policy, lang } = await policyFor(tag));
    } catch (e) {
      return say("save_failed");
    }
    render();
  }

  api.ready = (async () => {
    const data = inline ? JSON.parse(inline.text) : await policyFor(d.documentElement.lang);
    ({ policy, lang, languages: langs } = data);
    // null on a page a shared cache may keep: asked for here, never baked in.
    state = data.state ? (bare(data.state.choices), data.state) : await call("");
    names = bare(policy.aliases);
    for (const c of policy.categories) for (const s of c.services) names[s.id] = c.id;
    build();
    render();
    d.addEventListener("click", (event) => {
      if (!event.target.closest("[data-consent-open]")) return;
      event.preventDefault();
      open();
    });
    if (state.decided) apply();
    return api;
  })().catch((error) => console.warn("consentmw:", error));

  window.consentmw = api;
})();
