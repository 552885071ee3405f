/*! ChatKit widget: one file, no dependencies. Paste on any page:
 * <script src="https://CHAT-HOST/static/widget/chatkit.js" data-assistant="default" async></script>
 * Options, JS API and events: the project's README. */
(() => {
  "use strict";
  if (window.ChatKit) return; // pasted twice

  // --- Strings (English, the visitor's language, then the page's window.chatkitStrings)

  const LOCALES = {
    en: {
      open: "Open chat", close: "Close chat", title: "Chat", menu: "More options",
      fresh: "New conversation", save: "Download conversation", del: "Delete conversation",
      sure: "Delete this conversation for good?", yes: "Delete", no: "Cancel",
      ph: "Type your message…", send: "Send", stop: "Stop", retry: "Retry",
      more: "Show earlier messages", log: "Conversation", you: "You", up: "Helpful",
      down: "Not helpful", demo: "Demo mode", typing: "Writing a reply…", stopped: "Stopped.",
      failed: "This reply failed.", privacy: "Privacy policy", gone: "Conversation deleted.",
      notice: "You are chatting with an AI assistant. Conversations are kept for {days} days.",
      eNet: "No connection. Check your network and try again.",
      eGone: "This chat is not available here.",
      eBusy: "A reply is still being written. Try again shortly.",
      eLong: "Your message is too long.", eRate: "Too many messages. Try again shortly.",
      eBudget: "The assistant has reached today's limit. Try again later.",
      eServer: "The assistant could not answer. Try again.", eLoad: "The chat could not load.",
      eAuth: "Please sign in.", mine: "Your conversations",
    },
    es: {
      open: "Abrir chat", close: "Cerrar chat", menu: "Más opciones",
      fresh: "Nueva conversación", save: "Descargar conversación", del: "Eliminar conversación",
      sure: "¿Eliminar esta conversación para siempre?", yes: "Eliminar", no: "Cancelar",
      ph: "Escribe tu mensaje…", send: "Enviar", stop: "Detener", retry: "Reintentar",
      more: "Ver mensajes anteriores", log: "Conversación", you: "Tú", up: "Útil",
      down: "No útil", demo: "Modo demo", typing: "Escribiendo una respuesta…",
      stopped: "Detenido.", failed: "Esta respuesta falló.", privacy: "Política de privacidad",
      gone: "Conversación eliminada.",
      notice: "Estás hablando con un asistente de IA. Las conversaciones se guardan {days} días.",
      eNet: "Sin conexión. Comprueba tu red e inténtalo de nuevo.",
      eGone: "Este chat no está disponible aquí.",
      eBusy: "Aún se está escribiendo una respuesta. Inténtalo en breve.",
      eLong: "Tu mensaje es demasiado largo.",
      eRate: "Demasiados mensajes. Inténtalo en breve.",
      eBudget: "El asistente llegó a su límite de hoy. Inténtalo más tarde.",
      eServer: "El asistente no pudo responder. Inténtalo de nuevo.",
      eLoad: "No se pudo cargar el chat.", eAuth: "Inicia sesión.",
      mine: "Tus conversaciones",
    },
    fr: {
      open: "Ouvrir le chat", close: "Fermer le chat", menu: "Plus d’options",
      fresh: "Nouvelle conversation", save: "Télécharger la conversation",
      del: "Supprimer la conversation", sure: "Supprimer définitivement cette conversation ?",
      yes: "Supprimer", no: "Annuler", ph: "Écrivez votre message…", send: "Envoyer",
      stop: "Arrêter", retry: "Réessayer", more: "Afficher les messages précédents",
      you: "Vous", up: "Utile", down: "Pas utile", demo: "Mode démo",
      typing: "Rédaction de la réponse…", stopped: "Arrêté.", failed: "Cette réponse a échoué.",
      privacy: "Politique de confidentialité", gone: "Conversation supprimée.",
      notice: "Vous discutez avec un assistant IA. Les conversations sont conservées {days} jours.",
      eNet: "Pas de connexion. Vérifiez votre réseau et réessayez.",
      eGone: "Ce chat n’est pas disponible ici.",
      eBusy: "Une réponse est en cours. Réessayez dans un instant.",
      eLong: "Votre message est trop long.",
      eRate: "Trop de messages. Réessayez dans un instant.",
      eBudget: "L’assistant a atteint sa limite du jour. Réessayez plus tard.",
      eServer: "L’assistant n’a pas pu répondre. Réessayez.",
      eLoad: "Le chat n’a pas pu se charger.", eAuth: "Connectez-vous.",
      mine: "Vos conversations",
    },
    de: {
      open: "Chat öffnen", close: "Chat schließen", menu: "Weitere Optionen",
      fresh: "Neue Unterhaltung", save: "Unterhaltung herunterladen", del: "Unterhaltung löschen",
      sure: "Diese Unterhaltung endgültig löschen?", yes: "Löschen", no: "Abbrechen",
      ph: "Nachricht eingeben…", send: "Senden", stop: "Stoppen", retry: "Wiederholen",
      more: "Frühere Nachrichten anzeigen", log: "Unterhaltung", you: "Sie", up: "Hilfreich",
      down: "Nicht hilfreich", demo: "Demomodus", typing: "Antwort wird geschrieben…",
      stopped: "Gestoppt.", failed: "Diese Antwort ist fehlgeschlagen.",
      privacy: "Datenschutzerklärung", gone: "Unterhaltung gelöscht.",
      notice: "Sie chatten mit einem KI-Assistenten. Unterhaltungen werden {days} Tage aufbewahrt.",
      eNet: "Keine Verbindung. Prüfen Sie Ihr Netz und versuchen Sie es erneut.",
      eGone: "Dieser Chat ist hier nicht verfügbar.",
      eBusy: "Eine Antwort wird noch geschrieben. Versuchen Sie es gleich erneut.",
      eLong: "Ihre Nachricht ist zu lang.",
      eRate: "Zu viele Nachrichten. Versuchen Sie es gleich erneut.",
      eBudget: "Der Assistent hat sein Tageslimit erreicht. Versuchen Sie es später.",
      eServer: "Der Assistent konnte nicht antworten. Versuchen Sie es erneut.",
      eLoad: "Der Chat konnte nicht geladen werden.",
      eAuth: "Bitte anmelden.", mine: "Ihre Unterhaltungen",
    },
    ar: {
      open: "فتح المحادثة", close: "إغلاق المحادثة", title: "محادثة", menu: "خيارات أخرى",
      fresh: "محادثة جديدة", save: "تنزيل المحادثة", del: "حذف المحادثة",
      sure: "هل تريد حذف هذه المحادثة نهائيًا؟", yes: "حذف", no: "إلغاء",
      ph: "اكتب رسالتك…", send: "إرسال", stop: "إيقاف", retry: "إعادة المحاولة",
      more: "عرض الرسائل السابقة", log: "المحادثة", you: "أنت", up: "مفيد", down: "غير مفيد",
      demo: "وضع تجريبي", typing: "جارٍ كتابة الرد…", stopped: "تم الإيقاف.",
      failed: "فشل هذا الرد.", privacy: "سياسة الخصوصية", gone: "تم حذف المحادثة.",
      notice: "أنت تتحدث مع مساعد يعمل بالذكاء الاصطناعي. تُحفظ المحادثات لمدة {days} يومًا.",
      eNet: "لا يوجد اتصال. تحقق من الشبكة وحاول مرة أخرى.", eGone: "هذه المحادثة غير متاحة هنا.",
      eBusy: "ما زال الرد قيد الكتابة. حاول بعد لحظات.", eLong: "رسالتك طويلة جدًا.",
      eRate: "رسائل كثيرة جدًا. حاول بعد لحظات.",
      eBudget: "بلغ المساعد حده اليومي. حاول لاحقًا.",
      eServer: "تعذّر على المساعد الرد. حاول مرة أخرى.", eLoad: "تعذّر تحميل المحادثة.",
      eAuth: "سجّل الدخول.", mine: "محادثاتك",
    },
  };

  // --- Configuration: the script tag's data- attributes

  const script = document.currentScript || document.querySelector("script[data-assistant]");
  const opt = (script && script.dataset) || {};
  const src = (script && script.src) || location.href;
  // The chat host is where this file came from: https://HOST[/prefix]/static/widget/chatkit.js
  const served = /^(.*?)\/static\/widget\/chatkit[\w.]*\.js(?:[?#].*)?$/.exec(src);
  const ROOT = (opt.apiUrl || (served ? served[1] : new URL(src).origin))
    .replace(/\/+$/, "")
    .replace(/\/api\/v1$/, "");
  const API = ROOT + "/api/v1";
  const SLUG = opt.assistant || "default";
  const KEY = "chatkit:" + ROOT + ":" + SLUG;
  const OPEN_KEY = KEY + ":open";
  const locale = (opt.locale || navigator.language || "en").toLowerCase();
  const lang = locale.split("-")[0];
  const t = { ...LOCALES.en, ...LOCALES[lang], ...window.chatkitStrings };
  const RTL = /^(ar|he|fa|ur|ps|yi|dv|ku|sd|ug)$/.test(lang) && !!(LOCALES[lang] || window.chatkitStrings);

  // Storage may be off (privacy settings): a conversation then lasts a page.
  function stored(area, key, value) {
    try {
      const store = window[area];
      if (value === undefined) return store.getItem(key);
      value === null ? store.removeItem(key) : store.setItem(key, value);
    } catch {}
  }

  // --- State

  let config = null;
  let loading = null;
  let sid = stored("localStorage", KEY); // the session id: a visitor's credential
  let msgs = [];
  let hasMore = false;
  let fetching = false;
  let busy = false;
  let turn = null;
  let turnDone = null;
  let poll = 0;
  let frame = 0;
  let over = false;
  let isOpen = false;
  let isReady = false;
  let epoch = 0; // a new conversation drops late answers about the old
  let inline = opt.mode === "inline";
  let auth = opt.userToken;
  let token;

  // --- DOM helpers: nodes only, never markup parsed from a string

  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (value != null && value !== false) el.setAttribute(key, value === true ? "" : value);
    }
    el.append(...kids);
    return el;
  }

  const button = (props, ...kids) => h("button", { type: "button", ...props }, ...kids);

  const ICONS = {
    chat: "M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z",
    close: "M18 6 6 18M6 6l12 12",
    dots: "M5 12h.01M12 12h.01M19 12h.01",
    send: "M22 2 11 13M22 2l-7 20-4-9-9-4z",
    stop: "M7 7h10v10H7z",
    up: "M7 10v11M14 6l-1 4h6a2 2 0 0 1 2 2.3l-1.4 7A2 2 0 0 1 16.6 21H7V10l4-8a2.5 2.5 0 0 1 3 4z",
  };

  function icon(name, cls = name) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    const path = document.createElementNS(svg.namespaceURI, "path");
    path.setAttribute("d", ICONS[name]);
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", cls);
    svg.append(path);
    return svg;
  }

  // A safe Markdown subset; links to http(s) and mailto only, anything else stays text.
  const INLINE =
    /`([^`\n]+)`|\*\*(.+?)\*\*|__(.+?)__|\*(\S(?:.*?\S)?)\*|\b_(\S(?:.*?\S)?)_\b|\[([^\]\n]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>]*[^\s<>.,;:!?'")\]])/;

  function inlineNodes(text) {
    const out = [];
    let m;
    while (text && (m = INLINE.exec(text))) {
      out.push(text.slice(0, m.index));
      text = text.slice(m.index + m[0].length);
      const url = m[7] || m[8];
      if (m[1]) out.push(h("code", {}, m[1]));
      else if (m[2] || m[3]) out.push(h("strong", {}, ...inlineNodes(m[2] || m[3])));
      else if (m[4] || m[5]) out.push(h("em", {}, ...inlineNodes(m[4] || m[5])));
      else if (/^(https?:\/\/|mailto:)/i.test(url)) {
        const label = m[6] ? inlineNodes(m[6]) : [url];
        out.push(h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, ...label));
      } else out.push(m[0]);
    }
    out.push(text);
    return out;
  }

  function markdown(text) {
    const out = document.createDocumentFragment();
    const lines = text.split("\n");
    let para = null;
    let list = null;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      let m;
      if (/^\s*```/.test(line)) {
        const code = [];
        while (++i < lines.length && !/^\s*```/.test(lines[i])) code.push(lines[i]);
        out.append(h("pre", {}, h("code", {}, code.join("\n"))));
        para = list = null;
      } else if ((m = /^\s*(?:[-*+]|(\d{1,9})[.)])\s+(.*)$/.exec(line))) {
        const tag = m[1] ? "ol" : "ul";
        if (!list || list.localName !== tag) {
          out.append((list = h(tag, { start: m[1] > 1 && m[1] })));
        }
        list.append(h("li", {}, ...inlineNodes(m[2])));
        para = null;
      } else if ((m = /^#{1,6}\s+(.*)$/.exec(line))) {
        out.append(h("p", {}, h("strong", {}, ...inlineNodes(m[1]))));
        para = list = null;
      } else if (line.trim()) {
        if (para) para.append(h("br"));
        else out.append((para = h("p")));
        para.append(...inlineNodes(line));
        list = null;
      } else para = list = null;
    }
    return out;
  }

  // --- Styles: a constructed stylesheet, which a strict CSP allows (a <style> it blocks).
  // The shadow root's !important beats the page's; only custom properties come through.

  const CSS = `
:host{all:initial!important;display:contents!important}
[hidden]{display:none!important}
.w{--a:var(--chatkit-accent,var(--ck-accent,#2563eb));--on:var(--chatkit-on-accent,var(--ck-on,#fff));
--bg:#fff;--fg:#1f2328;--mu:#57606a;--bd:#d0d7de;--bb:#f1f3f5;--er:#b42318;
position:fixed;z-index:2147483000;bottom:calc(20px + env(safe-area-inset-bottom));right:20px;
font:16px/1.45 var(--chatkit-font,system-ui,sans-serif);color:var(--fg)}
.lf{right:auto;left:20px}
.dk{--bg:#0d1117;--fg:#e6edf3;--mu:#9ea7b3;--bd:#3d444d;--bb:#1e252e;--er:#ff8e87;color-scheme:dark}
*{box-sizing:border-box}
button{font:inherit;color:inherit;background:none;border:0;margin:0;padding:0;cursor:pointer;border-radius:8px}
button:disabled{opacity:.5;cursor:default}
:focus-visible{outline:2px solid var(--fg);outline-offset:2px}
header :focus-visible,.l:focus-visible{outline-color:var(--a);box-shadow:0 0 0 2px var(--on)}
svg{width:20px;height:20px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round;flex:none}
.stop{fill:currentColor}
.dots{stroke-width:3.5}
.down{transform:scaleY(-1)}
.l{width:56px;height:56px;border-radius:50%;background:var(--a);color:var(--on);display:grid;place-items:center;box-shadow:0 4px 16px rgba(0,0,0,.3)}
.l svg{width:26px;height:26px}
.p{position:absolute;bottom:72px;right:0;width:380px;max-width:calc(100vw - 40px);height:min(640px,calc(100vh - 120px));
display:flex;flex-direction:column;background:var(--bg);border:1px solid var(--bd);border-radius:16px;overflow:hidden;box-shadow:0 12px 48px rgba(0,0,0,.28)}
.lf .p{right:auto;left:0}
.in{position:relative;z-index:auto;inset:auto;height:100%}
.in .p{position:relative;bottom:auto;width:100%;max-width:none;height:100%;min-height:420px;box-shadow:none;border-radius:12px}
header{display:flex;align-items:center;gap:6px;padding:10px;padding-inline:16px 8px;background:var(--a);color:var(--on);position:relative}
.tt{flex:1;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bg{font-size:12px;padding:2px 8px;border-radius:99px;background:var(--on);color:var(--a);white-space:nowrap}
.ib{width:36px;height:36px;display:grid;place-items:center}
.mn{position:absolute;top:calc(100% - 4px);inset-inline-end:8px;z-index:2;min-width:220px;display:flex;flex-direction:column;padding:4px;
background:var(--bg);color:var(--fg);border:1px solid var(--bd);border-radius:10px;box-shadow:0 8px 24px rgba(0,0,0,.2)}
.mn button{padding:9px 12px;text-align:start}
.mn button:hover:enabled,.st button:hover{background:var(--bb)}
.cf,.al{display:flex;flex-wrap:wrap;align-items:center;gap:8px;padding:10px 12px;font-size:14px;border-bottom:1px solid var(--bd)}
.cf span,.al span{flex:1 1 160px}
.al{color:var(--er);border:1px solid var(--er);border-radius:8px;margin:8px 12px}
.bt{border:1px solid var(--bd);padding:5px 12px;font-size:14px;color:var(--fg)}
.x{background:var(--er);border-color:var(--er);color:var(--bg)}
.lg{flex:1;overflow-y:auto;overscroll-behavior:contain;padding:14px}
.ms{list-style:none;margin:0;padding:0;display:flex;flex-direction:column;gap:12px}
.m{max-width:88%;display:flex;flex-direction:column;gap:4px;align-items:start}
.u{align-self:end;align-items:end}
.b{padding:8px 13px;border-radius:14px;background:var(--bb);overflow-wrap:anywhere;max-width:100%}
.u .b{background:var(--a);color:var(--on);white-space:pre-wrap}
.f .b{border:1px solid var(--er)}
.b>*{margin:0 0 8px}.b>:last-child{margin:0}
.b ul,.b ol{padding-inline-start:22px}
.b a{color:inherit}
code{font:14px/1.4 ui-monospace,Menlo,Consolas,monospace;background:rgba(127,127,127,.16);padding:1px 4px;border-radius:4px}
pre{overflow-x:auto;padding:8px 10px;border-radius:8px;background:rgba(127,127,127,.16)}
pre code{background:none;padding:0}
.nt{margin:0;font-size:13px;color:var(--mu);display:flex;gap:8px;align-items:center}
.f .nt{color:var(--er)}
.nt button{text-decoration:underline;padding:2px 4px}
.fb{display:flex;gap:2px}
.fb button{width:30px;height:30px;display:grid;place-items:center;color:var(--mu)}
.fb svg{width:17px;height:17px}
.fb [aria-pressed=true]{color:var(--fg);background:var(--bb)}
.ty{display:inline-flex;gap:4px;padding:6px 0}
.ty i{width:7px;height:7px;border-radius:50%;background:var(--mu);animation:ck 1.2s infinite}
.ty i+i{animation-delay:.2s}.ty i+i+i{animation-delay:.4s}
@keyframes ck{50%{opacity:.25}}
.er{display:block;margin:0 auto 12px;font-size:14px;text-decoration:underline;padding:4px 8px}
.st{display:flex;flex-wrap:wrap;gap:8px;padding:0 14px 10px}
.st button{border:1px solid var(--bd);padding:6px 12px;border-radius:99px;font-size:14px;text-align:start}
form{display:flex;gap:8px;align-items:end;padding:10px 12px 6px;border-top:1px solid var(--bd)}
textarea{flex:1;resize:none;font:inherit;color:var(--fg);background:var(--bg);border:1px solid var(--bd);border-radius:10px;padding:8px 10px;min-height:42px;max-height:140px;margin:0}
textarea::placeholder{color:var(--mu);opacity:1}
.sd{width:42px;height:42px;display:grid;place-items:center;background:var(--a);color:var(--on);border-radius:10px}
[dir=rtl] .send{transform:scaleX(-1)}
.ct{font-size:12px;color:var(--mu);padding:0 14px;text-align:end}
.ov{color:var(--er);font-weight:600}
.nc{margin:0;padding:2px 14px 10px;font-size:12px;color:var(--mu);text-align:center}
.nc a{color:inherit}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:479.98px){
.w:not(.in) .p{position:fixed;inset:var(--vt,0) 0 auto;width:100%;max-width:none;height:var(--vh,100%);border:0;border-radius:0;padding-bottom:env(safe-area-inset-bottom)}
.op:not(.in) .l{display:none}}
@media (prefers-reduced-motion:reduce){*{animation:none!important}}`;

  // --- The DOM

  const host = document.createElement("chatkit-widget");
  const root = host.attachShadow({ mode: "open" });
  if (root.adoptedStyleSheets && CSSStyleSheet.prototype.replaceSync) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else root.append(h("style", {}, CSS));

  const wrap = h("div", {
    dir: RTL ? "rtl" : "ltr", lang: LOCALES[lang] || window.chatkitStrings ? lang : "en",
  });
  const launcher = button(
    { class: "l", "aria-expanded": "false", "aria-controls": "p", onclick: () => toggle() });
  const title = h("div", { class: "tt", id: "t" }, opt.title || t.title);
  const badge = h("span", { class: "bg", hidden: true }, t.demo);
  const menuButton = button({
    class: "ib", "aria-label": t.menu, "aria-expanded": "false", "aria-controls": "mn",
    onclick: () => menu(menuBox.hidden),
  }, icon("dots"));
  const closeButton = button({ class: "ib", "aria-label": t.close, onclick: () => close() }, icon("close"));
  const item = (label, action) =>
    button({ onclick: () => (menu(false), menuButton.focus(), action()) }, label);
  const freshItem = item(t.fresh, () => (reset(), input.focus()));
  const saveItem = item(t.save, () => download());
  const deleteItem = item(t.del, () => confirmDelete(true));
  const mineItem = item(t.mine, () => browse());
  const menuBox = h("div", { class: "mn", id: "mn", hidden: true },
    freshItem, mineItem, saveItem, deleteItem);
  const noButton = button({ class: "bt", onclick: () => confirmDelete(false) }, t.no);
  const confirmBox = h("div", { class: "cf", role: "alertdialog", "aria-labelledby": "q", hidden: true },
    h("span", { id: "q" }, t.sure), button({ class: "bt x", onclick: () => destroy() }, t.yes), noButton);
  const alertText = h("span");
  const alertButton = button({ class: "bt" }, t.retry);
  const alertBox = h("div", { class: "al", role: "alert", hidden: true }, alertText, alertButton);
  const earlierButton = button({ class: "er", hidden: true, onclick: () => earlier() }, t.more);
  const list = h("ol", { class: "ms" });
  const log = h("div", { class: "lg", role: "region", "aria-label": t.log, tabindex: "0" },
    earlierButton, list);
  const starters = h("div", { class: "st", hidden: true });
  const input = h("textarea", {
    rows: "1", dir: "auto", "aria-label": t.ph, placeholder: t.ph, enterkeyhint: "send",
    "aria-describedby": "ct",
  });
  const sendButton = h("button", { class: "sd", "aria-label": t.send }, icon("send"));
  const stopButton = button(
    { class: "sd", "aria-label": t.stop, hidden: true, onclick: () => stop() }, icon("stop"));
  const form = h("form", { onsubmit: (e) => (e.preventDefault(), submit()) },
    input, sendButton, stopButton);
  const counter = h("div", { class: "ct", id: "ct", hidden: true });
  const notice = h("p", { class: "nc" });
  const live = h("div", { class: "sr", "aria-live": "polite" });
  const panel = h("div", { class: "p", id: "p", hidden: true, "aria-labelledby": "t" },
    h("header", {}, title, badge, menuButton, closeButton, menuBox),
    confirmBox, log, starters, alertBox, form, counter, notice, live);

  // --- Transport: the v1 API

  const failure = (code, status = 0) => Object.assign(new Error(code), { code, status });

  async function call(method, path, body, signal, renew) {
    let res;
    try {
      const headers = body ? { "Content-Type": "application/json", Accept: "text/event-stream, */*" } : {};
      if (await bearer(renew)) headers.Authorization = "Bearer " + token;
      res = await fetch(API + path, {
        method,
        signal,
        credentials: "omit",
        headers,
        body: body && JSON.stringify(body),
      });
    } catch (e) {
      throw signal && signal.aborted ? e : failure("network");
    }
    if (res.ok) return res;
    let code = "http";
    try {
      code = (await res.json()).error.code;
    } catch {}
    if (code === "token_expired" && !renew) return call(method, path, body, signal, true);
    throw failure(code, res.status);
  }

  async function bearer(renew) {
    if (renew || !token) token = await (typeof auth == "function" ? auth() : auth);
    let sub;
    try {
      sub = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub;
    } catch {}
    // A shared computer shows nothing of the last person.
    const was = stored("localStorage", KEY + ":sub");
    if (was && was !== sub) reset();
    stored("localStorage", KEY + ":sub", sub || null);
    return token;
  }

  const json = async (method, path, body) => {
    const res = await call(method, path, body);
    return res.status === 204 ? null : res.json();
  };

  function errorText({ code, status }) {
    if (code === "network") return t.eNet;
    if (code === "budget_exhausted") return (config && config.unavailable_message) || t.eBudget;
    if (status === 429 || code === "upstream_rate_limited") return t.eRate;
    if (status === 401) return t.eAuth;
    if (status === 403 || status === 404) return t.eGone;
    if (status === 409) return t.eBusy;
    if (status === 413 || code === "too_long") return t.eLong;
    return t.eServer;
  }

  // --- Events: `chatkit:<name>` on window, which ChatKit.on(name, fn) listens to

  const emit = (name, detail) => dispatchEvent(new CustomEvent("chatkit:" + name, { detail }));

  const shape = (m) => ({ seq: m.seq, role: m.role, content: m.content, status: m.status });

  // --- Messages

  const nearEnd = () => log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  const toEnd = () => (log.scrollTop = log.scrollHeight);
  const findLast = (items, test) => {
    for (let i = items.length; i--; ) if (test(items[i])) return items[i];
  };
  const lastReply = () => findLast(msgs, (m) => m.role === "assistant" && !m.greeting);
  const question = (m) => findLast(msgs.slice(0, msgs.indexOf(m)), (x) => x.role === "user");
  const rating = (m) => m.feedback && m.feedback.rating;

  function show(m, first) {
    const previous = lastReply();
    m.el = h("li", { class: "m " + (m.role === "user" ? "u" : "a"), dir: "auto" });
    first ? msgs.unshift(m) : msgs.push(m);
    first ? list.prepend(m.el) : list.append(m.el);
    paint(m);
    if (previous && !first && previous.status !== "complete") paint(previous);
    return m;
  }

  function paint(m) {
    const kids = [];
    const failed = m.status === "error";
    if (m.role === "user") kids.push(h("div", { class: "b" }, m.content));
    else if (m.content) kids.push(h("div", { class: "b" }, markdown(m.content)));
    else if (m.status === "streaming" && !m.stale) {
      kids.push(h("div", { class: "b" }, h("span", { class: "ty", "aria-hidden": "true" },
        h("i"), h("i"), h("i")), h("span", { class: "sr" }, t.typing)));
    }
    if (m.role === "assistant" && !m.greeting) {
      // Failed or stopped, it says so: never an empty bubble.
      const note = failed ? m.err || t.failed : m.status === "interrupted" ? t.stopped : m.stale && t.eBusy;
      const again = !busy && !m.stale && m.retry !== false && m === lastReply() && question(m);
      if (note) {
        kids.push(h("p", { class: "nt" }, note,
          again ? button({ onclick: () => send(again.content) }, t.retry) : ""));
      }
      if (m.status === "complete" && m.seq) {
        m.thumbs = ["up", "down"].map((r) => button({
          value: r, "aria-label": t[r], "aria-pressed": String(rating(m) === r),
          onclick: () => rate(m, r),
        }, icon("up", r)));
        kids.push(h("div", { class: "fb" }, ...m.thumbs));
      }
    }
    m.el.classList.toggle("f", failed);
    m.el.replaceChildren(...kids);
  }

  function repaint(m) {
    frame = frame || requestAnimationFrame(() => {
      frame = 0;
      const end = nearEnd();
      paint(m);
      if (end) toEnd();
    });
  }

  const say = (text) => live.replaceChildren(h("p", {}, text));

  function report(e, again, text = errorText(e)) {
    alertText.textContent = text;
    alertButton.hidden = !again;
    alertButton.onclick = () => {
      alertBox.hidden = true;
      input.focus();
      again();
    };
    alertBox.hidden = true;
    setTimeout(() => (alertBox.hidden = false)); // anew: read out again
    emit("error", { code: e.code, message: text });
  }

  function clear() {
    msgs = [];
    list.replaceChildren();
    hasMore = false;
    starters.hidden = earlierButton.hidden = true;
  }

  function empty() {
    clear();
    if (config.greeting) show({ role: "assistant", content: config.greeting, greeting: true });
    starters.replaceChildren(
      ...config.starter_prompts.map((p) => button({ onclick: () => send(p) }, p)));
    starters.hidden = !config.starter_prompts.length;
  }

  function sync() {
    const focus = root.activeElement;
    sendButton.hidden = busy;
    stopButton.hidden = !busy;
    sendButton.disabled = over;
    saveItem.disabled = deleteItem.disabled = !sid || busy;
    if (focus && focus.hidden) input.focus();
    const last = lastReply();
    if (last) paint(last);
  }

  function count() {
    const n = [...input.value.trim()].length;
    const max = config ? config.max_message_chars : Infinity;
    const was = over;
    over = n > max;
    counter.hidden = n < max * 0.8;
    counter.textContent = n + " / " + max;
    counter.classList.toggle("ov", over);
    sendButton.disabled = over;
    if (over && !was) say(t.eLong);
    input.style.height = "auto";
    input.style.height = input.scrollHeight + 2 + "px";
  }

  // --- Loading: the config, then the stored conversation

  const ready = () =>
    (loading = loading || load().catch((e) => ((loading = null), report(e, ready, t.eLoad))));

  async function load() {
    try {
      config = await json("GET", "/assistants/" + encodeURIComponent(SLUG));
    } catch (e) {
      loading = null;
      return report(e, ready, e.code === "network" || e.status === 404 ? errorText(e) : t.eLoad);
    }
    title.textContent = opt.title || config.name;
    accent(opt.accentColor) || accent(config.accent_color);
    badge.hidden = config.mode !== "demo";
    notice.replaceChildren(config.notice || t.notice.replace("{days}", config.retention_days));
    if (/^https?:\/\//i.test(config.privacy_url)) {
      notice.append(" ", h("a", { href: config.privacy_url, target: "_blank", rel: "noopener noreferrer" }, t.privacy));
    }
    count();
    if (!sid) return empty();
    const asked = epoch;
    let s;
    try {
      s = await json("GET", "/sessions/" + encodeURIComponent(sid));
      if (asked !== epoch) return;
    } catch (e) {
      if (asked !== epoch) return;
      if (e.status !== 404) {
        loading = null;
        return report(e, ready);
      }
      forget();
      return empty();
    }
    clear();
    s.messages.forEach((m) => show(m));
    hasMore = s.has_more;
    earlierButton.hidden = !hasMore;
    if (!msgs.length) empty();
    sync();
    toEnd();
    watch(msgs[msgs.length - 1]);
  }

  // A reply still written when the last page left: read again, for a minute at most.
  function watch(m, delay = 1000, spent = 0) {
    clearTimeout(poll);
    if (!m || m.status !== "streaming") return;
    if (spent >= 60000) {
      m.stale = true;
      return paint(m);
    }
    delay = Math.min(delay, 60000 - spent);
    const asked = epoch;
    poll = setTimeout(async () => {
      try {
        const s = await json("GET", "/sessions/" + encodeURIComponent(sid));
        if (asked !== epoch) return;
        Object.assign(m, s.messages.find((x) => x.seq === m.seq));
      } catch {}
      if (m.status === "streaming") return watch(m, delay * 2, spent + delay);
      paint(m);
      sync();
    }, delay);
  }

  async function earlier() {
    const first = msgs.find((m) => m.seq);
    if (!hasMore || fetching || !first) return;
    fetching = true;
    const asked = epoch;
    try {
      const s = await json("GET", `/sessions/${encodeURIComponent(sid)}?before=${first.seq}`);
      if (asked !== epoch) return (fetching = false);
      const height = log.scrollHeight;
      s.messages.reverse().forEach((m) => show(m, true));
      hasMore = s.has_more;
      log.scrollTop += log.scrollHeight - height;
    } catch (e) {
      report(e);
    }
    fetching = false;
    if (!hasMore && root.activeElement === earlierButton) log.focus();
    earlierButton.hidden = !hasMore;
  }

  // --- A turn: the visitor's message, then the reply streamed into its bubble

  // Text not sent goes back into the box, before what was typed meanwhile.
  function keep(text) {
    input.value = input.value ? text + "\n" + input.value : text;
    count();
  }

  function submit() {
    const text = input.value.trim();
    if (!text || busy || over) return;
    input.value = "";
    count();
    send(text);
  }

  async function send(text) {
    text = String(text == null ? "" : text).trim();
    if (!text || busy) return false;
    // Starters and Retry vanish as they send: the focus goes to the box.
    const inside = !!root.activeElement;
    busy = true;
    let done;
    turnDone = new Promise((resolve) => (done = resolve));
    open();
    await ready();
    if (!config || [...text].length > config.max_message_chars) {
      busy = false;
      done();
      keep(text);
      if (config) report(failure("too_long"));
      return false;
    }
    alertBox.hidden = confirmBox.hidden = starters.hidden = true;
    const user = show({ role: "user", content: text, status: "complete" });
    const reply = show({ role: "assistant", content: "", status: "streaming" });
    const ctl = (turn = new AbortController());
    sync();
    toEnd();
    if (inside) input.focus();
    let started = false;
    const post = () => call("POST", `/sessions/${encodeURIComponent(sid)}/messages`,
      { content: text, stream: true }, ctl.signal);
    try {
      if (!sid) await start(ctl.signal);
      let res;
      try {
        res = await post();
      } catch (e) {
        if (e.status !== 404) throw e;
        // Deleted elsewhere or purged: a new conversation, without the old messages.
        forget();
        clearTimeout(poll);
        for (const m of msgs) if (m !== user && m !== reply) m.el.remove();
        msgs = [user, reply];
        hasMore = false;
        earlierButton.hidden = true;
        await start(ctl.signal);
        res = await post();
      }
      started = true;
      await read(res, user, reply);
      return true;
    } catch (e) {
      if (started && ctl.signal.aborted) reply.status = "interrupted";
      else if (started) {
        Object.assign(reply, { status: "error", err: errorText(e), retry: e.retryable });
        emit("error", { code: e.code, message: reply.err });
      } else {
        // Nothing (known to be) stored.
        user.el.remove();
        reply.el.remove();
        msgs = msgs.filter((m) => m !== user && m !== reply);
        keep(text);
        if (!msgs.some((m) => !m.greeting)) empty();
        if (!ctl.signal.aborted) report(e);
      }
      return false;
    } finally {
      cancelAnimationFrame(frame);
      frame = 0;
      busy = false;
      turn = null;
      done();
      if (reply.el.isConnected) {
        paint(reply);
        say(reply.status === "complete" ? reply.el.innerText : reply.err || t.stopped);
      }
      sync();
      if (nearEnd()) toEnd();
    }
  }

  async function start(signal) {
    const page = { page: (location.origin + location.pathname).slice(0, 500) };
    const res = await call("POST", "/sessions", { assistant: SLUG, metadata: page }, signal);
    sid = (await res.json()).id;
    stored("localStorage", KEY, sid);
  }

  // Server-Sent Events off a fetch (EventSource cannot POST).
  async function read(res, user, reply) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw failure("network");
      // A CRLF may be split between chunks.
      buffer = (buffer + decoder.decode(value, { stream: true })).replace(/\r\n|\r(?=[^])/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const lines = buffer.slice(0, end).split("\n");
        buffer = buffer.slice(end + 2);
        const name = (lines.find((l) => l.startsWith("event:")) || "event:message").slice(6).trim();
        const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("\n");
        if (!data) continue;
        const d = JSON.parse(data);
        if (name === "error") throw Object.assign(failure(d.code), { retryable: d.retryable });
        if (name === "delta") {
          reply.content += d.text;
          repaint(reply);
          continue;
        }
        const m = { message: user, done: reply }[name];
        if (!m) continue;
        Object.assign(m, d);
        emit("message", shape(m));
        if (m === reply) return;
      }
    }
  }

  const stop = () => turn && turn.abort();

  async function rate(m, r) {
    try {
      const path = `/sessions/${encodeURIComponent(sid)}/messages/${m.seq}/feedback`;
      m.feedback = (await json("POST", path, { rating: rating(m) === r ? null : r })).feedback;
    } catch (e) {
      report(e);
    }
    for (const b of m.thumbs) b.setAttribute("aria-pressed", String(rating(m) === b.value));
  }

  // --- The conversation: new, delete, download

  function forget() {
    sid = null;
    stored("localStorage", KEY, null);
    sync();
  }

  // A new conversation forgets the old one in this browser only; staff keep it.
  function reset() {
    stop();
    clearTimeout(poll);
    epoch++;
    forget();
    alertBox.hidden = confirmBox.hidden = true;
    if (config) empty();
    sync();
  }

  const browse = () => json("GET", "/sessions?assistant=" + encodeURIComponent(SLUG)).then((page) => {
    reset();
    starters.replaceChildren(...page.sessions.map((s) => button({
      onclick: () => (stored("localStorage", KEY, (sid = s.id)), (loading = null), ready(), input.focus()),
    }, s.title || t.log)));
    starters.hidden = false;
    starters.firstChild?.focus();
  }, report);

  function confirmDelete(ask) {
    confirmBox.hidden = !ask;
    (ask ? noButton : menuButton).focus();
  }

  async function destroy() {
    try {
      await json("DELETE", "/sessions/" + encodeURIComponent(sid));
    } catch (e) {
      if (e.status !== 404) return report(e);
    }
    reset();
    say(t.gone);
    input.focus();
  }

  async function download() {
    let all = msgs.filter((m) => !m.greeting);
    try {
      for (let more = hasMore; more; ) {
        const s = await json("GET", `/sessions/${encodeURIComponent(sid)}?before=${all[0].seq}`);
        all = s.messages.concat(all);
        more = s.has_more;
      }
    } catch (e) {
      return report(e);
    }
    const name = title.textContent;
    const text = [name + " · " + new Date().toLocaleString() + "\n"]
      .concat(all.map((m) => `${m.role === "user" ? t.you : name}:\n${m.content}\n`))
      .join("\n");
    const url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
    h("a", { href: url, download: "conversation.txt" }).click();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // --- Open, close, look

  function open(auto) {
    if (isOpen) return;
    isOpen = true;
    if (!inline) stored("sessionStorage", OPEN_KEY, "1");
    panel.hidden = false;
    panel.setAttribute("aria-modal", String(!inline && narrow.matches));
    wrap.classList.add("op");
    label(t.close, "close");
    if (!auto) input.focus(); // never stolen on page load
    ready();
    emit("open");
  }

  function close() {
    if (!isOpen || inline) return;
    const inside = root.activeElement;
    isOpen = false;
    stored("sessionStorage", OPEN_KEY, null);
    menu(false);
    panel.hidden = true;
    wrap.classList.remove("op");
    label(t.open, "chat");
    if (inside) launcher.focus();
    emit("close");
  }

  const toggle = () => (isOpen ? close() : open());

  function label(text, name) {
    launcher.setAttribute("aria-label", text);
    launcher.setAttribute("aria-expanded", String(isOpen));
    launcher.replaceChildren(icon(name));
  }

  function menu(show) {
    mineItem.hidden = !auth || config?.identity === "off";
    menuBox.hidden = !show;
    menuButton.setAttribute("aria-expanded", String(show));
    if (show) freshItem.focus();
  }

  // Text on the accent: dark or light, whichever contrasts more (WCAG).
  function accent(c) {
    if (!/^#[0-9a-f]{6}$/i.test(c)) return false;
    const [r, g, b] = [1, 3, 5].map((i) => {
      const v = parseInt(c.slice(i, i + 2), 16) / 255;
      return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    const l = 0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05;
    wrap.style.setProperty("--ck-accent", c);
    wrap.style.setProperty("--ck-on", 1.05 / l >= l / 0.0556 ? "#fff" : "#111");
    return true;
  }

  const scheme = matchMedia("(prefers-color-scheme: dark)");
  const narrow = matchMedia("(max-width: 479.98px)");
  const theme = () =>
    wrap.classList.toggle("dk", opt.theme === "dark" || (opt.theme !== "light" && scheme.matches));

  // On phones the panel fits the visual viewport, above the keyboard.
  function fit() {
    const v = window.visualViewport;
    if (v) {
      wrap.style.setProperty("--vh", v.height + "px");
      wrap.style.setProperty("--vt", v.offsetTop + "px");
    }
  }

  // --- Keyboard and pointer

  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", count);
  log.addEventListener("scroll", () => log.scrollTop < 40 && earlier());
  // Keys typed in the chat stay out of the page's shortcuts.
  for (const type of ["keydown", "keyup", "keypress"]) {
    root.addEventListener(type, (e) => e.stopPropagation());
  }
  // Full screen, the panel is modal: Tab goes round inside it.
  root.addEventListener("keydown", (e) => {
    if (e.key !== "Tab" || inline || !narrow.matches) return;
    const stops = [...panel.querySelectorAll("button,textarea,a,[tabindex]")].filter((el) => el.offsetParent);
    const edge = stops[e.shiftKey ? 0 : stops.length - 1];
    if (root.activeElement === edge) {
      e.preventDefault();
      stops[e.shiftKey ? stops.length - 1 : 0].focus();
    }
  });
  root.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    if (!menuBox.hidden) {
      menu(false);
      menuButton.focus();
    } else if (!confirmBox.hidden) confirmDelete(false);
    else close();
  });
  document.addEventListener("click", (e) => {
    const path = e.composedPath();
    if (!path.includes(menuBox) && !path.includes(menuButton)) menu(false);
  });

  // --- Start: the JS API (set as this file runs), then mount, the queue, ready

  // API sends wait for one another, and for the turn under way.
  let queue = Promise.resolve();
  const sendWhenFree = async (text) => {
    while (busy) await turnDone;
    return send(text);
  };
  window.ChatKit = {
    open: () => open(),
    close,
    toggle,
    send: (text) => (queue = queue.then(() => sendWhenFree(text))),
    reset,
    identify(source) {
      auth = source;
      bearer(true).catch(() => {});
    },
    on(name, fn) {
      const listener = (e) => fn(e.detail);
      addEventListener("chatkit:" + name, listener);
      if (name === "ready" && isReady) fn();
      return () => removeEventListener("chatkit:" + name, listener);
    },
  };

  function mount() {
    let target = null;
    try {
      target = inline && document.querySelector(opt.target);
    } catch {}
    if (inline && !target) console.warn("ChatKit: data-target matches nothing; using the bubble");
    inline = !!target;
    wrap.className = "w" + (inline ? " in" : opt.position === "left" ? " lf" : "");
    panel.setAttribute("role", inline ? "region" : "dialog");
    if (inline) closeButton.remove();
    else wrap.append(launcher);
    wrap.append(panel);
    root.append(wrap);
    // Outside <body>, which some sites swap (Turbo).
    (target || document.documentElement).append(host);
    label(isOpen ? t.close : t.open, isOpen ? "close" : "chat");
    theme();
    scheme.addEventListener("change", theme);
    fit();
    if (window.visualViewport) {
      visualViewport.addEventListener("resize", fit);
      visualViewport.addEventListener("scroll", fit);
    }
    accent(opt.accentColor);
    sync();

    const api = window.ChatKit;
    const run = (c) => Array.isArray(c) && api[c[0]] && api[c[0]](...c.slice(1));
    const queued = Array.isArray(window.chatkitQueue) ? window.chatkitQueue : [];
    window.chatkitQueue = { push: (...calls) => calls.forEach(run) };
    queued.forEach(run); // first: the page's listeners hear what follows
    // data-open: not on phones, where the panel covers the page
    const wanted = opt.open != null && opt.open !== "false" && innerWidth >= 480;
    if (inline || wanted || stored("sessionStorage", OPEN_KEY)) open(true);
    isReady = true;
    emit("ready");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
