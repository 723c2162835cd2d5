// Connects like a frontend would, waits for one notification, sends one command,
// and prints each step as a JSON line for the Python test to read.
//   node client.mjs <url> <token> <command name> <command payload as JSON>
import { io } from "socket.io-client";

const [url, token, command, payload] = process.argv.slice(2);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const socket = io(url, { auth: { token }, transports: ["websocket"], reconnection: false });
const bail = setTimeout(() => { say({ step: "timeout" }); process.exit(2); }, 20000);

socket.on("connect", () => say({ step: "connected" }));
socket.on("connect_error", (err) => { say({ step: "refused", message: err.message }); process.exit(1); });
socket.once("product:added", async (notification) => {
  say({ step: "notified", payload: notification });
  const ack = await socket.timeout(10000).emitWithAck(command, JSON.parse(payload));
  say({ step: "ack", ack });
  clearTimeout(bail);
  socket.disconnect();
  process.exit(0);
});
