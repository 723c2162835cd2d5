/*
 * API keys of server-to-server integrators (auth's): issue one with the scopes it needs, see it
 * once, tell keys apart by their prefix (sk_...), see when each was last used, revoke one.
 *
 * The scopes offered are the ones auth answers (GET /admin/api-keys/scopes), with what each
 * allows. Keys make no events, so this list is read when the console loads, after each change made
 * here, and on Reload.
 */
"use strict";

const apikeys = screen({
  name: "apikeys",
  items: [],
  scopes: {}, // scope -> what it allows
  issued: null, // { name, key } just issued: shown once, never kept anywhere else

  boot() {
    $("#apikeys-reload").addEventListener("click", () => apikeys.load());
    $("#apikey-form").addEventListener("submit", (event) => {
      event.preventDefault();
      issueKey(event.currentTarget);
    });
  },

  async load() {
    try {
      const [scopes, page] = await Promise.all([
        Object.keys(apikeys.scopes).length ? apikeys.scopes : api("/admin/api-keys/scopes"),
        api("/admin/api-keys?page_size=100"),
      ]);
      apikeys.scopes = scopes;
      apikeys.items = page.items || [];
      $("#apikeys-error").textContent = "";
    } catch (err) {
      $("#apikeys-error").textContent = "Could not load the API keys: " + err.message;
      return false;
    } finally {
      apikeys.render();
    }
    return true;
  },

  reset() {
    apikeys.items = [];
  },

  end() {
    apikeys.issued = null;
    $("#apikey-form").reset();
    clearErrors($("#apikey-form"));
  },

  render() {
    renderScopes();
    const shown = apikeys.issued;
    $("#apikey-issued").hidden = !shown;
    $("#apikey-issued-name").textContent = shown ? shown.name : "";
    $("#apikey-issued-key").textContent = shown ? shown.key : "";
    const live = apikeys.items.filter((k) => !k.revoked_at).length;
    $("#apikeys-count").textContent = apikeys.items.length ? "(" + live + " live)" : "";
    $("#apikeys-empty").hidden = apikeys.items.length > 0;
    const body = $("#apikeys-body");
    keepFocus(body, "keyId", () => body.replaceChildren(...apikeys.items.map(keyRow)));
  },
});

// one checkbox per scope auth knows; what was ticked stays ticked across re-renders
function renderScopes() {
  const box = $("#apikey-scopes");
  const ticked = new Set([...box.querySelectorAll("input:checked")].map((i) => i.value));
  if (box.querySelectorAll("input").length === Object.keys(apikeys.scopes).length) return;
  box.replaceChildren(...Object.entries(apikeys.scopes).map(([scope, allows]) => el("label", { className: "check" },
    el("input", { type: "checkbox", name: "scope", value: scope, checked: ticked.has(scope) ? "" : null }),
    el("span", { className: "mono", text: scope }), el("span", { className: "muted", text: " " + allows }))));
}

function keyRow(k) {
  const cells = [
    el("td", { "data-label": "Name", text: k.name }),
    el("td", { "data-label": "Key", className: "mono", text: k.prefix + "_\u2026" }),
    el("td", { "data-label": "Scopes", text: k.scopes.join(", ") }),
    el("td", { "data-label": "Last used", text: k.last_used_at ? when(k.last_used_at) : "never" }),
    el("td", { "data-label": "Made", text: when(k.created_at), title: k.created_at }),
    el("td", { "data-label": "State", dataset: { role: "state" },
      text: k.revoked_at ? "revoked " + when(k.revoked_at) : "live" }),
  ];
  const actions = el("td", { className: "num" });
  if (!k.revoked_at) {
    const revoke = armedButton("Revoke", "Confirm: revoke", async () => {
      try {
        await api("/admin/api-keys/" + encodeURIComponent(k.id), { method: "DELETE" });
      } catch (err) {
        $("#apikeys-error").textContent = "Could not revoke " + k.name + ": " + err.message;
        return false;
      }
      $("#apikeys-error").textContent = "";
      await apikeys.load();
      return true;
    });
    revoke.setAttribute("aria-label", "Revoke key " + k.name + " (" + k.prefix + ")");
    revoke.classList.add("key-revoke");
    actions.append(revoke);
  }
  return el("tr", { dataset: { keyId: k.id, prefix: k.prefix }, className: k.revoked_at ? "revoked" : "" }, ...cells, actions);
}

async function issueKey(form) {
  clearErrors(form);
  const body = { name: text(form, "name"), scopes: [...form.querySelectorAll('input[name="scope"]:checked')].map((i) => i.value) };
  const submit = form.querySelector('button[type="submit"]');
  submit.disabled = true;
  try {
    const made = await api("/admin/api-keys", { method: "POST", body });
    apikeys.issued = { name: made.name, key: made.key };
    form.reset();
    await apikeys.load();
    $("#apikey-issued-key").focus();
  } catch (err) {
    showErrors(form, problemOf(err));
  } finally {
    submit.disabled = false;
  }
}
