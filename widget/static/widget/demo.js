// The demo page's chat: plain JSON calls to the v1 API. Every text goes in with
// textContent, so nothing a visitor or the model writes is ever markup.
(function () {
  "use strict";
  const root = document.getElementById("chat");
  const assistant = root.dataset.assistant;
  const storageKey = "chatkit-demo-session:" + assistant;
  const log = document.getElementById("chat-log");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-input");
  const send = document.getElementById("chat-send");
  const errorBox = document.getElementById("chat-error");

  async function api(method, path, body) {
    const response = await fetch("/api/v1" + path, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    if (response.status === 204) return null;
    const data = await response.json();
    if (!response.ok) {
      const error = new Error(data.error ? data.error.message : "Request failed");
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function show(role, text, failed) {
    const item = document.createElement("li");
    item.className = role + (failed ? " failed" : "");
    item.textContent = text;
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  async function loadConfig() {
    const config = await api("GET", "/assistants/" + encodeURIComponent(assistant));
    document.getElementById("chat-name").textContent = config.name;
    document.getElementById("chat-mode").hidden = config.mode !== "demo";
    input.maxLength = config.max_message_chars;
    return config;
  }

  async function loadHistory(config) {
    log.replaceChildren();
    const sessionId = localStorage.getItem(storageKey);
    if (sessionId) {
      try {
        const session = await api("GET", "/sessions/" + sessionId);
        session.messages.forEach((m) => show(m.role, m.content, m.status === "error"));
      } catch (error) {
        if (error.status !== 404) throw error;
        localStorage.removeItem(storageKey);
      }
    }
    if (!log.children.length && config.greeting) show("assistant", config.greeting);
  }

  async function sessionId() {
    let id = localStorage.getItem(storageKey);
    if (!id) {
      id = (await api("POST", "/sessions", { assistant, metadata: { page: location.pathname } })).id;
      localStorage.setItem(storageKey, id);
    }
    return id;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = input.value.trim();
    if (!content) return;
    showError("");
    send.disabled = true;
    show("user", content);
    input.value = "";
    const pending = show("assistant", "…");
    try {
      const turn = await api("POST", "/sessions/" + (await sessionId()) + "/messages", { content });
      pending.textContent = turn.assistant_message.content;
    } catch (error) {
      pending.remove();
      showError(error.message);
    } finally {
      send.disabled = false;
      input.focus();
    }
  });

  document.getElementById("chat-reset").addEventListener("click", async () => {
    const id = localStorage.getItem(storageKey);
    showError("");
    try {
      if (id) {
        await api("DELETE", "/sessions/" + id).catch((error) => {
          if (error.status !== 404) throw error; // already gone is what we wanted
        });
      }
      localStorage.removeItem(storageKey);
      await loadHistory(await loadConfig());
    } catch (error) {
      showError(error.message);
    }
  });

  loadConfig().then(loadHistory).catch((error) => showError(error.message));
})();
