// The Node/Express backend ChatKit replaced, written from the seed's description: sessions in
// a Map, the last 10 messages as context, one non-streaming completion per turn through the
// official openai client. The bench runs it against the same fake model as ChatKit.
//
//   OPENAI_API_KEY=fake OPENAI_BASE_URL=http://127.0.0.1:8001/v1 PORT=3000 node server.js

const crypto = require("node:crypto");
const express = require("express");
const OpenAI = require("openai");

const PORT = Number(process.env.PORT || 3000);
const HOST = process.env.HOST || "127.0.0.1";
const MODEL = process.env.OPENAI_MODEL || "gpt-4o-mini";
const CONTEXT_MESSAGES = 10;
const SYSTEM_PROMPT = "You are a helpful assistant.";

const openai = new OpenAI({
  apiKey: process.env.OPENAI_API_KEY,
  baseURL: process.env.OPENAI_BASE_URL,
});
const sessions = new Map(); // sessionId -> [{role, content}]
const started = Date.now();

const app = express();
app.use(express.json({ limit: "64kb" }));

app.get("/health", (req, res) => {
  res.json({
    status: "OK",
    timestamp: new Date().toISOString(),
    uptime: (Date.now() - started) / 1000,
  });
});

app.post("/api/create-session", (req, res) => {
  const sessionId = crypto.randomUUID();
  sessions.set(sessionId, []);
  res.json({ sessionId, message: "Session created successfully" });
});

app.post("/api/chat", async (req, res) => {
  const { sessionId, message } = req.body || {};
  if (typeof message !== "string" || !message.trim() || message.length > 1000) {
    return res.status(400).json({ error: "Message is required (at most 1000 characters)" });
  }
  let history = sessions.get(sessionId);
  if (!history) {
    return res.status(404).json({ error: "Session not found" });
  }
  history.push({ role: "user", content: message });
  try {
    const completion = await openai.chat.completions.create({
      model: MODEL,
      messages: [
        { role: "system", content: SYSTEM_PROMPT },
        ...history.slice(-CONTEXT_MESSAGES),
      ],
      max_tokens: 500,
      temperature: 0.7,
    });
    const response = completion.choices[0]?.message?.content ?? "";
    history.push({ role: "assistant", content: response });
    res.json({ sessionId, response, timestamp: new Date().toISOString() });
  } catch (err) {
    res.status(502).json({ error: "The model failed to answer" });
  }
});

const server = app.listen(PORT, HOST, () => {
  console.log(`node peer listening on http://${HOST}:${PORT}`);
});
// Many concurrent keep-alive clients: keep idle sockets longer than the load generator does.
server.keepAliveTimeout = 65_000;

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
