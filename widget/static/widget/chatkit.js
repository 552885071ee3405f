/*! ChatKit widget: one file, no dependencies. Paste on any page:
 * <script src="https://CHAT-HOST/static/widget/chatkit.js" data-assistant="default" async></script>
 * Options, JS API and events: see the project's README. */
(() => {
  "use strict";
  if (window.ChatKit && window.ChatKit.version) return; // the snippet pasted twice

  // --- Strings: every one overridable through window.chatkitStrings

  const LOCALES = {
    en: {
      open: "Open chat", close: "Close chat", title: "Chat", menu: "More options",
      fresh: "New conversation", save: "Download conversation", del: "Delete conversation",
      sure: "Delete this conversation for good?", yes: "Delete", no: "Cancel",
      input: "Message", ph: "Type your message…", send: "Send", stop: "Stop", retry: "Retry", more: "Show earlier messages", log: "Conversation", tips: "Suggestions",
      you: "You", up: "Helpful", down: "Not helpful", demo: "Demo mode",
      typing: "Writing a reply…", stopped: "Stopped.", failed: "This reply failed.", privacy: "Privacy policy",
      notice: "You are chatting with an AI assistant. Conversations are kept for {days} days.",
      gone: "Conversation deleted.",
      eNet: "You seem to be offline. Check your connection and try again.",
      eOrigin: "This chat is not available on this website.",
      eGone: "This assistant is not available.",
      eBusy: "A reply is still being written. Try again in a moment.",
      eLong: "Your message is too long.",
      eRate: "Too many messages. Wait a moment and try again.",
      eBudget: "The assistant has reached its limit for today. Try again later.",
      eServer: "The assistant could not answer. Try again.",
      eNo: "The assistant could not answer this message.", eLoad: "The chat could not load.",
    },
    es: {
      open: "Abrir chat", close: "Cerrar chat", menu: "Más opciones",
      fresh: "Nueva conversación", save: "Descargar conversación", del: "Eliminar conversación",
      sure: "¿Eliminar esta conversación para siempre?", yes: "Eliminar", no: "Cancelar",
      input: "Mensaje", ph: "Escribe tu mensaje…", send: "Enviar", stop: "Detener",
      retry: "Reintentar", more: "Ver mensajes anteriores",
      log: "Conversación", tips: "Sugerencias", you: "Tú", up: "Útil", down: "No útil",
      demo: "Modo demo", typing: "Escribiendo una respuesta…", stopped: "Detenido.",
      failed: "Esta respuesta falló.",
      privacy: "Política de privacidad",
      notice: "Estás hablando con un asistente de IA. Las conversaciones se guardan {days} días.",
      gone: "Conversación eliminada.",
      eNet: "Parece que no tienes conexión. Compruébala e inténtalo de nuevo.",
      eOrigin: "Este chat no está disponible en este sitio web.",
      eGone: "Este asistente no está disponible.",
      eBusy: "Todavía se está escribiendo una respuesta. Inténtalo en un momento.",
      eLong: "Tu mensaje es demasiado largo.",
      eRate: "Demasiados mensajes. Espera un momento e inténtalo de nuevo.",
      eBudget: "El asistente ha alcanzado su límite de hoy. Inténtalo más tarde.",
      eServer: "El asistente no pudo responder. Inténtalo de nuevo.",
      eNo: "El asistente no pudo responder a este mensaje.", eLoad: "No se pudo cargar el chat.",
    },
    fr: {
      open: "Ouvrir le chat", close: "Fermer le chat", menu: "Plus d’options",
      fresh: "Nouvelle conversation", save: "Télécharger la conversation",
      del: "Supprimer la conversation", sure: "Supprimer définitivement cette conversation ?",
      yes: "Supprimer", no: "Annuler", input: "Message", ph: "Écrivez votre message…",
      send: "Envoyer", stop: "Arrêter", retry: "Réessayer",
      more: "Afficher les messages précédents", tips: "Suggestions", you: "Vous", up: "Utile",
      down: "Pas utile", demo: "Mode démo", typing: "Rédaction de la réponse…",
      stopped: "Arrêté.", failed: "Cette réponse a échoué.",
      privacy: "Politique de confidentialité",
      notice: "Vous discutez avec un assistant IA. Les conversations sont conservées {days} jours.",
      gone: "Conversation supprimée.",
      eNet: "Vous semblez hors ligne. Vérifiez votre connexion et réessayez.",
      eOrigin: "Ce chat n’est pas disponible sur ce site.",
      eGone: "Cet assistant n’est pas disponible.",
      eBusy: "Une réponse est encore en cours. Réessayez dans un instant.",
      eLong: "Votre message est trop long.",
      eRate: "Trop de messages. Patientez un instant puis réessayez.",
      eBudget: "L’assistant a atteint sa limite pour aujourd’hui. Réessayez plus tard.",
      eServer: "L’assistant n’a pas pu répondre. Réessayez.",
      eNo: "L’assistant n’a pas pu répondre à ce message.", eLoad: "Le chat n’a pas pu se charger.",
    },
    de: {
      open: "Chat öffnen", close: "Chat schließen", menu: "Weitere Optionen",
      fresh: "Neue Unterhaltung", save: "Unterhaltung herunterladen", del: "Unterhaltung löschen",
      sure: "Diese Unterhaltung endgültig löschen?", yes: "Löschen", no: "Abbrechen",
      input: "Nachricht", ph: "Nachricht eingeben…", send: "Senden", stop: "Stoppen",
      retry: "Wiederholen", more: "Frühere Nachrichten anzeigen",
      log: "Unterhaltung", tips: "Vorschläge", you: "Sie", up: "Hilfreich",
      down: "Nicht hilfreich", demo: "Demomodus", typing: "Antwort wird geschrieben…",
      stopped: "Gestoppt.", failed: "Diese Antwort ist fehlgeschlagen.", privacy: "Datenschutzerklärung",
      notice: "Sie chatten mit einem KI-Assistenten. Unterhaltungen werden {days} Tage aufbewahrt.",
      gone: "Unterhaltung gelöscht.",
      eNet: "Sie scheinen offline zu sein. Prüfen Sie die Verbindung und versuchen Sie es erneut.",
      eOrigin: "Dieser Chat ist auf dieser Website nicht verfügbar.",
      eGone: "Dieser Assistent ist nicht verfügbar.",
      eBusy: "Eine Antwort wird noch geschrieben. Versuchen Sie es gleich noch einmal.",
      eLong: "Ihre Nachricht ist zu lang.",
      eRate: "Zu viele Nachrichten. Warten Sie kurz und versuchen Sie es erneut.",
      eBudget: "Der Assistent hat sein Tageslimit erreicht. Versuchen Sie es später erneut.",
      eServer: "Der Assistent konnte nicht antworten. Versuchen Sie es erneut.",
      eNo: "Der Assistent konnte auf diese Nachricht nicht antworten.",
      eLoad: "Der Chat konnte nicht geladen werden.",
    },
    ar: {
      open: "فتح المحادثة", close: "إغلاق المحادثة", title: "محادثة", menu: "خيارات أخرى",
      fresh: "محادثة جديدة", save: "تنزيل المحادثة", del: "حذف المحادثة",
      sure: "هل تريد حذف هذه المحادثة نهائيًا؟", yes: "حذف", no: "إلغاء", input: "الرسالة",
      ph: "اكتب رسالتك…", send: "إرسال", stop: "إيقاف", retry: "إعادة المحاولة", more: "عرض الرسائل السابقة", log: "المحادثة", tips: "اقتراحات",
      you: "أنت", up: "مفيد", down: "غير مفيد", demo: "وضع تجريبي", typing: "جارٍ كتابة الرد…",
      stopped: "تم الإيقاف.", failed: "فشل هذا الرد.",
      privacy: "سياسة الخصوصية",
      notice: "أنت تتحدث مع مساعد يعمل بالذكاء الاصطناعي. تُحفظ المحادثات لمدة {days} يومًا.",
      gone: "تم حذف المحادثة.", eNet: "يبدو أنك غير متصل. تحقق من اتصالك وحاول مرة أخرى.",
      eOrigin: "هذه المحادثة غير متاحة على هذا الموقع.", eGone: "هذا المساعد غير متاح.",
      eBusy: "ما زال الرد قيد الكتابة. حاول بعد لحظات.", eLong: "رسالتك طويلة جدًا.",
      eRate: "رسائل كثيرة جدًا. انتظر قليلًا ثم حاول مرة أخرى.",
      eBudget: "بلغ المساعد حده اليومي. حاول لاحقًا.", eServer: "تعذّر على المساعد الرد. حاول مرة أخرى.",
      eNo: "تعذّر على المساعد الرد على هذه الرسالة.",
      eLoad: "تعذّر تحميل المحادثة.",
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
  const KEY = "chatkit:" + ROOT + ":" + SLUG; // the session id, per assistant and chat host
  const OPEN_KEY = KEY + ":open"; // the panel was open on the previous page (this tab)
  const LEFT = opt.position === "left";
  const requested = (opt.locale || navigator.language || "en").toLowerCase();
  const lang = requested.split("-")[0];
  const overrides = window.chatkitStrings || {};
  const t = { ...LOCALES.en, ...LOCALES[lang], ...overrides };
  const RTL = /^(ar|he|fa|ur|ps|yi|dv|ku|sd|ug)$/.test(lang);

  const storage = (area) => ({
    get: (k) => {
      try {
        return window[area].getItem(k);
      } catch {
        return null; // storage disabled (privacy settings, sandboxed frames)
      }
    },
    set: (k, v) => {
      try {
        v == null ? window[area].removeItem(k) : window[area].setItem(k, v);
      } catch {
        /* the conversation lasts as long as the page, then */
      }
    },
  });
  const local = storage("localStorage");
  const tab = storage("sessionStorage");

  // --- State

  let config = null; // GET /assistants/{slug}, once the panel has opened
  let loading = null; // the promise of loading it (and the stored conversation)
  let sid = local.get(KEY); // the session id: the visitor's only key to the conversation
  let msgs = []; // shown messages: {seq, role, content, status, feedback, err, el, …}
  let hasMore = false; // older messages wait on the server
  let fetching = false;
  let busy = false; // a turn is under way
  let turn = null; // its AbortController (Stop)
  let poll = 0;
  let frame = 0;
  let over = false; // the draft is longer than the assistant allows
  let isOpen = false;
  let inline = opt.mode === "inline";
  let isReady = false;
  const listeners = {};

  // --- Rendering helpers: DOM nodes only, never markup from a string

  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, "");
      else if (v !== false && v != null) el.setAttribute(k, v);
    }
    el.append(...kids);
    return el;
  }

  const ICONS = {
    chat: "M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z",
    close: "M18 6 6 18M6 6l12 12",
    dots: "M5 12h.01M12 12h.01M19 12h.01",
    send: "M22 2 11 13M22 2l-7 20-4-9-9-4z",
    stop: "M7 7h10v10H7z",
    up: "M7 10v11M14 6l-1 4h6a2 2 0 0 1 2 2.3l-1.4 7A2 2 0 0 1 16.6 21H7V10l4-8a2.5 2.5 0 0 1 3 4z",
  };

  function icon(name, cls) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    const path = document.createElementNS(ns, "path");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    if (cls) svg.setAttribute("class", cls);
    path.setAttribute("d", ICONS[name]);
    svg.append(path);
    return svg;
  }

  // A safe Markdown subset: paragraphs, **bold**, *italic*, `code`, fenced code blocks, lists
  // and links to http(s) and mailto only. Anything else stays text.
  const INLINE =
    /`([^`\n]+)`|\*\*(.+?)\*\*|__(.+?)__|\*(\S(?:.*?\S)?)\*|\b_(\S(?:.*?\S)?)_\b|\[([^\]\n]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>]*[^\s<>.,;:!?'")\]])/;

  function inlineNodes(text) {
    const out = [];
    let m;
    while (text && (m = INLINE.exec(text))) {
      if (m.index) out.push(text.slice(0, m.index));
      text = text.slice(m.index + m[0].length);
      if (m[1] != null) out.push(h("code", {}, m[1]));
      else if (m[2] || m[3]) out.push(h("strong", {}, ...inlineNodes(m[2] || m[3])));
      else if (m[4] || m[5]) out.push(h("em", {}, ...inlineNodes(m[4] || m[5])));
      else {
        const url = m[7] || m[8];
        out.push(
          /^(https?:\/\/|mailto:)/i.test(url)
            ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer" },
                ...(m[6] ? inlineNodes(m[6]) : [url]))
            : m[0],
        );
      }
    }
    if (text) out.push(text);
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
          out.append((list = h(tag, { start: m[1] && m[1] !== "1" ? m[1] : null })));
        }
        list.append(h("li", {}, ...inlineNodes(m[2])));
        para = null;
      } else if (!line.trim()) {
        para = list = null;
      } else if ((m = /^#{1,6}\s+(.*)$/.exec(line))) {
        out.append(h("p", {}, h("strong", {}, ...inlineNodes(m[1]))));
        para = list = null;
      } else {
        if (para) para.append(h("br"));
        else out.append((para = h("p")));
        para.append(...inlineNodes(line));
        list = null;
      }
    }
    return out;
  }

  // --- Styles: a constructed stylesheet, which a strict host CSP allows

  const CSS = `
:host{all:initial!important;display:contents!important}
[hidden]{display:none!important}
.w{--a:var(--chatkit-accent,var(--ck-accent,#2563eb));--on:var(--chatkit-on-accent,var(--ck-on,#fff));
--bg:#fff;--fg:#1f2328;--mu:#57606a;--bd:#d0d7de;--bb:#f1f3f5;--er:#b42318;
position:fixed;z-index:2147483000;bottom:calc(20px + env(safe-area-inset-bottom));right:20px;
font:16px/1.45 var(--chatkit-font,system-ui,-apple-system,"Segoe UI",Roboto,sans-serif);
color:var(--fg);text-align:start;-webkit-text-size-adjust:100%}
.w.lf{right:auto;left:20px}
.dk{--bg:#0d1117;--fg:#e6edf3;--mu:#9ea7b3;--bd:#3d444d;--bb:#1e252e;--er:#ff8e87;color-scheme:dark}
*,::before,::after{box-sizing:border-box}
button{font:inherit;color:inherit;background:none;border:0;margin:0;padding:0;cursor:pointer;border-radius:8px}
button:disabled{opacity:.5;cursor:default}
:focus-visible{outline:2px solid var(--fg);outline-offset:2px}
header :focus-visible,.l:focus-visible{outline-color:var(--a);box-shadow:0 0 0 2px var(--on)}
svg{width:20px;height:20px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round;flex:none}
.fill{fill:currentColor}
.dn{transform:scaleY(-1)}
.l{width:56px;height:56px;border-radius:50%;background:var(--a);color:var(--on);display:grid;place-items:center;box-shadow:0 4px 16px rgba(0,0,0,.3)}
.l svg{width:26px;height:26px}
[aria-controls=mn] svg{stroke-width:3.5}
.p{position:absolute;bottom:72px;right:0;width:380px;max-width:calc(100vw - 40px);height:min(640px,calc(100vh - 120px));
display:flex;flex-direction:column;background:var(--bg);border:1px solid var(--bd);border-radius:16px;overflow:hidden;box-shadow:0 12px 48px rgba(0,0,0,.28)}
.lf .p{right:auto;left:0}
.in{position:relative;z-index:auto;inset:auto;height:100%}
.in .p{position:relative;bottom:auto;width:100%;max-width:none;height:100%;min-height:420px;box-shadow:none;border-radius:12px}
header{display:flex;align-items:center;gap:6px;padding:10px;padding-inline:16px 8px;background:var(--a);color:var(--on);position:relative}
.tt{flex:1;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bg{font-size:12px;padding:2px 8px;border-radius:99px;background:var(--on);color:var(--a);white-space:nowrap}
.ib{width:36px;height:36px;display:inline-grid;place-items:center}
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
.b p,.b ul,.b ol,.b pre{margin:0 0 8px}.b>:last-child{margin-bottom:0}
.b ul,.b ol{padding-inline-start:22px}
.b a{color:inherit;text-decoration:underline}
code{font:14px/1.4 ui-monospace,Menlo,Consolas,monospace;background:rgba(127,127,127,.16);padding:1px 4px;border-radius:4px}
pre{overflow-x:auto;padding:8px 10px;border-radius:8px;background:rgba(127,127,127,.16);white-space:pre}
pre code{background:none;padding:0}
.nt2{margin:0;font-size:13px;color:var(--mu);display:flex;gap:8px;align-items:center}
.f .nt2{color:var(--er)}
.nt2 button{text-decoration:underline;font-size:13px;padding:2px 4px}
.fb{display:flex;gap:2px}
.fb button{width:30px;height:30px;display:grid;place-items:center;color:var(--mu)}
.fb svg{width:17px;height:17px}
.fb [aria-pressed=true]{color:var(--fg);background:var(--bb)}
.fb [aria-pressed=true] svg{fill:currentColor;fill-opacity:.25}
.dots{display:inline-flex;gap:4px;padding:6px 0}
.dots i{width:7px;height:7px;border-radius:50%;background:var(--mu);animation:ck 1.2s infinite}
.dots i:nth-child(2){animation-delay:.2s}.dots i:nth-child(3){animation-delay:.4s}
@keyframes ck{50%{opacity:.25}}
.er{display:block;margin:0 auto 12px;font-size:14px;text-decoration:underline;padding:4px 8px}
.st{display:flex;flex-wrap:wrap;gap:8px;padding:0 14px 10px}
.st button{border:1px solid var(--bd);padding:6px 12px;border-radius:99px;font-size:14px;text-align:start}
form{display:flex;gap:8px;align-items:end;padding:10px 12px 6px;border-top:1px solid var(--bd)}
textarea{flex:1;resize:none;font:inherit;font-size:16px;color:var(--fg);background:var(--bg);border:1px solid var(--bd);border-radius:10px;padding:8px 10px;min-height:42px;max-height:140px;margin:0}
textarea::placeholder{color:var(--mu);opacity:1}
.sd{width:42px;height:42px;display:grid;place-items:center;background:var(--a);color:var(--on);border-radius:10px}
[dir=rtl] .sd svg{transform:scaleX(-1)}
.ct{font-size:12px;color:var(--mu);padding:0 14px;text-align:end}
.ct.ov{color:var(--er);font-weight:600}
.nc{margin:0;padding:2px 14px 10px;font-size:12px;color:var(--mu);text-align:center}
.nc a{color:inherit}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:479.98px){
.w:not(.in) .p{position:fixed;left:0;right:0;top:var(--vt,0);bottom:auto;width:100%;max-width:none;height:var(--vh,100%);border:0;border-radius:0;
padding-bottom:env(safe-area-inset-bottom)}
.op:not(.in) .l{display:none}}
@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}`;

  // --- The DOM

  const host = document.createElement("chatkit-widget");
  const root = host.attachShadow({ mode: "open" });
  if (root.adoptedStyleSheets && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else {
    root.append(h("style", {}, CSS)); // older browsers; blocked only by a strict style-src
  }

  const wrap = h("div", { class: "w", dir: RTL ? "rtl" : "ltr", lang: LOCALES[lang] || window.chatkitStrings ? requested : "en" });
  const launcher = h("button", {
    type: "button", class: "l", "aria-expanded": "false", "aria-controls": "p",
    "aria-label": t.open, onclick: () => toggle(),
  }, icon("chat"));
  const title = h("div", { class: "tt", id: "t" }, opt.title || t.title);
  const badge = h("span", { class: "bg", hidden: true }, t.demo);
  const menuButton = h("button", {
    type: "button", class: "ib", "aria-label": t.menu, "aria-expanded": "false",
    "aria-controls": "mn", onclick: () => menu(menuBox.hidden),
  }, icon("dots"));
  const closeButton = h("button", {
    type: "button", class: "ib", "aria-label": t.close, onclick: () => close(),
  }, icon("close"));
  const menuItem = (label, action) =>
    h("button", {
      type: "button",
      onclick: () => {
        menu(false);
        menuButton.focus(); // unless the action moves it on
        action();
      },
    }, label);
  const freshItem = menuItem(t.fresh, () => (reset(), input.focus()));
  const saveItem = menuItem(t.save, () => download());
  const deleteItem = menuItem(t.del, () => confirmDelete(true));
  const menuBox = h("div", { class: "mn", id: "mn", hidden: true }, freshItem, saveItem, deleteItem);
  const noButton = h("button", { type: "button", class: "bt", onclick: () => confirmDelete(false) }, t.no);
  const confirmBox = h("div", { class: "cf", hidden: true },
    h("span", {}, t.sure),
    h("button", { type: "button", class: "bt x", onclick: () => destroy() }, t.yes),
    noButton);
  const alertText = h("span");
  const alertButton = h("button", { type: "button", class: "bt" }, t.retry);
  const alertBox = h("div", { class: "al", role: "alert", hidden: true }, alertText, alertButton);
  const earlierButton = h("button", { type: "button", class: "er", hidden: true, onclick: () => earlier() }, t.more);
  const list = h("ol", { class: "ms" });
  const log = h("div", { class: "lg", role: "region", "aria-label": t.log, tabindex: "0" }, earlierButton, list);
  const starters = h("div", { class: "st", role: "group", "aria-label": t.tips, hidden: true });
  const input = h("textarea", {
    id: "i", rows: "1", dir: "auto", placeholder: t.ph, enterkeyhint: "send", "aria-describedby": "ct",
  });
  const sendButton = h("button", { type: "submit", class: "sd", "aria-label": t.send }, icon("send"));
  const stopButton = h("button", {
    type: "button", class: "sd", "aria-label": t.stop, hidden: true, onclick: () => stop(),
  }, icon("stop", "fill"));
  const form = h("form", { onsubmit: (e) => (e.preventDefault(), submit()) },
    h("label", { class: "sr", for: "i" }, t.input), input, sendButton, stopButton);
  const counter = h("div", { class: "ct", id: "ct", hidden: true });
  const notice = h("p", { class: "nc" });
  const live = h("div", { class: "sr", "aria-live": "polite" });
  const panel = h("div", { class: "p", id: "p", hidden: true, "aria-labelledby": "t" },
    h("header", {}, title, badge, menuButton, closeButton, menuBox),
    confirmBox, log, starters, alertBox, form, counter, notice, live);

  // --- Transport: the v1 API

  function failure(code, status = 0, retryable = true) {
    return Object.assign(new Error(code), { code, status, retryable });
  }

  async function call(method, path, body, signal, stream) {
    let res;
    try {
      res = await fetch(API + path, {
        method, signal, credentials: "omit",
        headers: { ...(body && { "Content-Type": "application/json" }), ...(stream && { Accept: "text/event-stream" }) },
        body: body && JSON.stringify(body),
      });
    } catch (e) {
      throw signal && signal.aborted ? e : failure("network");
    }
    if (!res.ok) {
      let code = "http_" + res.status;
      try {
        code = (await res.json()).error.code || code;
      } catch {
        /* not our JSON: a proxy's page */
      }
      throw failure(code, res.status);
    }
    return res;
  }

  const json = async (method, path, body) => {
    const res = await call(method, path, body);
    return res.status === 204 ? null : res.json();
  };

  function errorText(e) {
    const { code, status } = e;
    if (code === "network") return t.eNet;
    if (code === "budget_exhausted") return t.eBudget;
    if (status === 429) return t.eRate;
    if (status === 403) return t.eOrigin;
    if (status === 404) return t.eGone;
    if (status === 409) return t.eBusy;
    if (status === 413) return t.eLong;
    return e.retryable === false ? t.eNo : t.eServer;
  }

  // --- Events for the host page

  function emit(name, detail) {
    for (const fn of listeners[name] || []) {
      try {
        fn(detail);
      } catch (e) {
        setTimeout(() => {
          throw e; // the host's bug, reported, without breaking the widget
        });
      }
    }
    window.dispatchEvent(new CustomEvent("chatkit:" + name, { detail }));
  }

  const shape = (m) => ({ seq: m.seq, role: m.role, content: m.content, status: m.status });

  // --- Messages

  const nearEnd = () => log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  const toEnd = () => (log.scrollTop = log.scrollHeight);
  const findLast = (items, test) => {
    for (let i = items.length; i--; ) if (test(items[i])) return items[i];
  };
  const lastReply = () => findLast(msgs, (m) => m.role === "assistant" && !m.greeting);

  function show(m, first) {
    const previous = lastReply();
    m.el = h("li", { class: "m " + (m.role === "user" ? "u" : "a"), dir: "auto" });
    if (first) {
      msgs.unshift(m);
      list.prepend(m.el);
    } else {
      msgs.push(m);
      list.append(m.el);
    }
    paint(m);
    // Only the last reply offers Retry: the one before it loses its button.
    if (previous && !first && previous.status !== "complete") paint(previous);
    return m;
  }

  function paint(m) {
    const kids = [];
    const failed = m.status === "error";
    if (m.role === "user") kids.push(h("div", { class: "b" }, m.content));
    else if (m.content) kids.push(h("div", { class: "b" }, markdown(m.content)));
    else if (m.status === "streaming") {
      kids.push(h("div", { class: "b" },
        h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")),
        h("span", { class: "sr" }, t.typing)));
    }
    if (m.role === "assistant" && !m.greeting) {
      const note = failed ? m.err || t.failed : m.status === "interrupted" ? t.stopped : "";
      const retry = (failed || m.status === "interrupted") && !busy && m === lastReply() && before(m);
      if (note) {
        kids.push(h("p", { class: "nt2" }, note,
          retry ? h("button", { type: "button", onclick: () => send(before(m).content) }, t.retry) : ""));
      }
      if (m.status === "complete" && m.seq) {
        m.thumbs = ["up", "down"].map((r) =>
          h("button", {
            type: "button", value: r, "aria-label": t[r], "aria-pressed": String(rating(m) === r),
            onclick: () => rate(m, r),
          }, icon("up", r === "down" ? "dn" : "")));
        kids.push(h("div", { class: "fb" }, ...m.thumbs));
      }
    }
    m.el.classList.toggle("f", failed);
    m.el.replaceChildren(...kids);
  }

  // The visitor message a reply answers.
  const before = (m) => findLast(msgs.slice(0, msgs.indexOf(m)), (x) => x.role === "user");
  const rating = (m) => (m.feedback ? m.feedback.rating : null);

  function repaint(m) {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      const end = nearEnd();
      paint(m);
      if (end) toEnd();
    });
  }

  function say(text) {
    live.replaceChildren(h("p", {}, text)); // a new node: read out even when the same as before
  }

  function report(e, again, text = errorText(e)) {
    alertText.textContent = text;
    alertButton.hidden = !again;
    alertButton.onclick = () => (alertBox.hidden = true, again());
    alertBox.hidden = false;
    emit("error", { code: e.code, message: text });
  }

  function clear() {
    msgs = [];
    list.replaceChildren();
    starters.hidden = true;
    hasMore = false;
    earlierButton.hidden = true;
  }

  function empty() {
    clear();
    if (config.greeting) show({ role: "assistant", content: config.greeting, status: "complete", greeting: true });
    starters.replaceChildren(
      ...config.starter_prompts.map((p) => h("button", { type: "button", onclick: () => send(p) }, p)));
    starters.hidden = !config.starter_prompts.length;
  }

  function sync() {
    if (busy && root.activeElement === sendButton) input.focus();
    if (!busy && root.activeElement === stopButton) input.focus();
    sendButton.hidden = busy;
    stopButton.hidden = !busy;
    sendButton.disabled = over;
    saveItem.disabled = deleteItem.disabled = !sid || busy;
    const last = lastReply();
    if (last) paint(last); // its Retry comes and goes with `busy`
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
    input.style.height = "auto"; // grow with the text, up to the CSS max-height
    input.style.height = input.scrollHeight + 2 + "px";
  }

  // --- Loading: the assistant's config, then the stored conversation

  function ready() {
    return (loading = loading || load());
  }

  async function load() {
    try {
      config = await json("GET", "/assistants/" + encodeURIComponent(SLUG));
    } catch (e) {
      loading = null;
      const known = e.code === "network" || e.status === 403 || e.status === 404;
      return report(e, () => ready(), known ? errorText(e) : t.eLoad);
    }
    title.textContent = opt.title || config.name;
    accent(opt.accentColor || config.accent_color);
    badge.hidden = config.mode !== "demo";
    const text = config.notice || t.notice.replace("{days}", config.retention_days);
    notice.replaceChildren(text);
    if (/^https?:\/\//i.test(config.privacy_url)) {
      notice.append(" ", h("a", { href: config.privacy_url, target: "_blank", rel: "noopener noreferrer" }, t.privacy));
    }
    count();
    if (sid) await restore();
    else empty();
  }

  async function restore() {
    let s;
    try {
      s = await json("GET", "/sessions/" + encodeURIComponent(sid));
    } catch (e) {
      if (e.status !== 404) {
        loading = null; // so that opening again tries again
        return report(e, () => ready());
      }
      forget(); // deleted, purged or never ours: start afresh
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

  // A reply still being written when the previous page left: re-read it with back-off, for a
  // minute at most; then it is shown as it ended (or as unfinished), never as a spinner forever.
  function watch(m, delay = 1000, spent = 0) {
    clearTimeout(poll);
    if (!m || m.status !== "streaming") return;
    if (spent >= 60000) {
      Object.assign(m, { status: "error" });
      return sync();
    }
    delay = Math.min(delay, 60000 - spent);
    poll = setTimeout(async () => {
      try {
        const s = await json("GET", "/sessions/" + encodeURIComponent(sid));
        const fresh = s.messages.find((x) => x.seq === m.seq);
        if (fresh) Object.assign(m, fresh);
      } catch {
        /* try again with the next read */
      }
      if (m.status === "streaming") watch(m, delay * 2, spent + delay);
      else sync();
    }, delay);
  }

  async function earlier() {
    const first = msgs.find((m) => m.seq);
    if (!hasMore || fetching || !first) return;
    fetching = true;
    try {
      const s = await json("GET", `/sessions/${encodeURIComponent(sid)}?before=${first.seq}`);
      const height = log.scrollHeight;
      s.messages.reverse().forEach((m) => show(m, true));
      hasMore = s.has_more;
      log.scrollTop += log.scrollHeight - height; // keep what the visitor was reading in place
    } catch (e) {
      report(e);
    } finally {
      fetching = false;
      earlierButton.hidden = !hasMore;
    }
  }

  // --- A turn: the visitor's message, then the reply streamed into its bubble

  function submit() {
    const text = input.value.trim();
    if (!text || busy || over || !config) return;
    input.value = "";
    count();
    send(text);
  }

  async function send(text) {
    text = String(text == null ? "" : text).trim();
    if (!text || busy) return false;
    busy = true;
    open();
    await ready();
    if (!config) return (busy = false);
    if ([...text].length > config.max_message_chars) {
      busy = false;
      report(failure("too_long", 413));
      return false;
    }
    alertBox.hidden = confirmBox.hidden = true;
    starters.hidden = true;
    const user = show({ role: "user", content: text, status: "complete" });
    const reply = show({ role: "assistant", content: "", status: "streaming" });
    const ctl = (turn = new AbortController());
    sync();
    toEnd();
    let started = false;
    try {
      const post = () =>
        call("POST", `/sessions/${encodeURIComponent(sid)}/messages`, { content: text, stream: true }, ctl.signal, true);
      if (!sid) await start(ctl.signal);
      let res;
      try {
        res = await post();
      } catch (e) {
        if (e.status !== 404) throw e;
        forget(); // the conversation is gone (deleted elsewhere, purged): a new one
        await start(ctl.signal);
        res = await post();
      }
      started = true;
      await read(res, user, reply);
      return true;
    } catch (e) {
      if (ctl.signal.aborted) {
        reply.status = "interrupted"; // Stop: the server keeps the text so far, likewise
      } else if (!started) {
        // Nothing was stored: take the message back into the box rather than lose it.
        for (const m of [user, reply]) m.el.remove();
        msgs = msgs.filter((m) => m !== user && m !== reply);
        if (!input.value) input.value = text;
        count();
        if (!msgs.some((m) => !m.greeting)) empty();
        report(e);
      } else {
        Object.assign(reply, { status: "error", err: errorText(e) });
        emit("error", { code: e.code, message: reply.err });
      }
      return false;
    } finally {
      cancelAnimationFrame(frame);
      frame = 0;
      busy = false;
      turn = null;
      if (reply.el.isConnected) paint(reply);
      sync();
      if (nearEnd()) toEnd();
    }
  }

  async function start(signal) {
    const s = await call("POST", "/sessions", {
      assistant: SLUG,
      metadata: { page: (location.origin + location.pathname).slice(0, 500) },
    }, signal);
    sid = (await s.json()).id;
    local.set(KEY, sid);
  }

  // Server-Sent Events off a fetch (EventSource cannot POST): message, delta…, done | error.
  async function read(res, user, reply) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
        }
        if (!data) continue; // `: ping`
        const d = JSON.parse(data);
        if (name === "message") {
          Object.assign(user, d);
          emit("message", shape(user));
        } else if (name === "delta") {
          reply.content += d.text;
          repaint(reply);
        } else if (name === "done") {
          Object.assign(reply, d);
          paint(reply);
          say((reply.el.querySelector(".b") || reply.el).textContent);
          emit("message", shape(reply));
          return;
        } else if (name === "error") {
          throw failure(d.code, 0, d.retryable);
        }
      }
    }
    throw failure("network"); // the connection ended without done or error
  }

  function stop() {
    if (turn) turn.abort();
  }

  async function rate(m, r) {
    try {
      const path = `/sessions/${encodeURIComponent(sid)}/messages/${m.seq}/feedback`;
      m.feedback = (await json("POST", path, { rating: rating(m) === r ? null : r })).feedback;
    } catch (e) {
      report(e);
    }
    for (const b of m.thumbs) b.setAttribute("aria-pressed", String(rating(m) === b.value));
  }

  // --- Conversation: new, delete, download

  function forget() {
    sid = null;
    local.set(KEY, null);
  }

  // A new conversation forgets this one in the browser only; staff and retention keep it.
  function reset() {
    stop();
    clearTimeout(poll);
    forget();
    alertBox.hidden = confirmBox.hidden = true;
    if (config) empty();
    sync();
  }

  function confirmDelete(show) {
    confirmBox.hidden = !show;
    (show ? noButton : menuButton).focus();
  }

  async function destroy() {
    try {
      await json("DELETE", "/sessions/" + encodeURIComponent(sid));
    } catch (e) {
      if (e.status !== 404) return report(e); // 404: already gone, which is what was asked
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
    const text = [name + " · " + new Date().toLocaleString(), ""]
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
    if (!inline) tab.set(OPEN_KEY, "1");
    panel.hidden = false;
    wrap.classList.add("op");
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", t.close);
    launcher.replaceChildren(icon("close"));
    if (!auto) input.focus();
    ready();
    emit("open");
  }

  function close() {
    if (!isOpen || inline) return;
    const inside = !!root.activeElement;
    isOpen = false;
    tab.set(OPEN_KEY, null);
    menu(false);
    panel.hidden = true;
    wrap.classList.remove("op");
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", t.open);
    launcher.replaceChildren(icon("chat"));
    if (inside) launcher.focus();
    emit("close");
  }

  function toggle() {
    isOpen ? close() : open();
  }

  function menu(show) {
    menuBox.hidden = !show;
    menuButton.setAttribute("aria-expanded", String(show));
    if (show) freshItem.focus();
  }

  // The accent colour, and text on it dark or light, whichever contrasts more (WCAG).
  function accent(c) {
    if (/^#[0-9a-f]{3}$/i.test(c)) c = c.replace(/\w/g, "$&$&");
    if (!/^#[0-9a-f]{6}$/i.test(c)) return;
    const [r, g, b] = [1, 3, 5].map((i) => {
      const v = parseInt(c.slice(i, i + 2), 16) / 255;
      return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    const l = 0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05;
    wrap.style.setProperty("--ck-accent", c);
    wrap.style.setProperty("--ck-on", 1.05 / l >= l / 0.0556 ? "#fff" : "#111");
  }

  function theme() {
    const dark = opt.theme === "dark" || (opt.theme !== "light" && scheme.matches);
    wrap.classList.toggle("dk", dark);
  }

  // On phones the panel fills the visual viewport, so the on-screen keyboard never covers it.
  function fit() {
    const v = window.visualViewport;
    if (!v) return;
    wrap.style.setProperty("--vh", v.height + "px");
    wrap.style.setProperty("--vt", v.offsetTop + "px");
  }

  const scheme = matchMedia("(prefers-color-scheme: dark)");

  // --- Keyboard and pointer

  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", count);
  log.addEventListener("scroll", () => log.scrollTop < 40 && earlier());
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
    if (!menuBox.hidden && !path.includes(menuBox) && !path.includes(menuButton)) menu(false);
  });

  // --- Start: the JS API, the queue, ready

  function mount() {
    const target = inline && opt.target && document.querySelector(opt.target);
    if (inline && !target) {
      console.warn("ChatKit: data-target matches nothing; showing the chat bubble instead");
      inline = false;
    }
    wrap.className = "w" + (inline ? " in" : LEFT ? " lf" : "");
    if (inline) {
      panel.setAttribute("role", "region");
      closeButton.remove();
    } else {
      panel.setAttribute("role", "dialog");
      wrap.append(launcher);
    }
    wrap.append(panel);
    root.append(wrap);
    (target || document.body).append(host);
    theme();
    scheme.addEventListener("change", theme);
    fit();
    if (window.visualViewport) {
      visualViewport.addEventListener("resize", fit);
      visualViewport.addEventListener("scroll", fit);
    }
    if (opt.accentColor) accent(opt.accentColor);
    sync();

    const wanted = opt.open != null && opt.open !== "false" && innerWidth >= 480;
    if (inline || wanted || tab.get(OPEN_KEY)) open(true);

    const api = {
      version: "1",
      open: () => open(),
      close,
      toggle,
      send: (text) => send(text),
      reset,
      on(name, fn) {
        (listeners[name] = listeners[name] || []).push(fn);
        if (name === "ready" && isReady) fn();
        return () => (listeners[name] = listeners[name].filter((f) => f !== fn));
      },
    };
    window.ChatKit = api;
    const run = (call) => {
      if (Array.isArray(call) && typeof api[call[0]] === "function") api[call[0]](...call.slice(1));
    };
    const queued = Array.isArray(window.chatkitQueue) ? window.chatkitQueue : [];
    window.chatkitQueue = { push: (...calls) => calls.forEach(run) };
    queued.forEach(run);
    isReady = true;
    emit("ready");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
