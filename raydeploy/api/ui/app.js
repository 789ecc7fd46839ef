// raydeploy web UI: plain JavaScript, no build step. The token lives in
// sessionStorage only and is sent as a bearer token to this server.
"use strict";
(function () {
  const KEY = "raydeploy.token";
  const $ = (id) => document.getElementById(id);
  const roles = { viewer: 1, operator: 2, approver: 3, admin: 4 };
  let me = null, lastEventID = "0", streamAbort = null, refreshTimer = null;

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) e.append(k instanceof Node ? k : document.createTextNode(String(k ?? "")));
    return e;
  }
  const fmt = (t) => (t ? new Date(t).toLocaleString() : "");

  async function api(method, path, body) {
    const h = { Authorization: "Bearer " + sessionStorage.getItem(KEY) };
    if (body !== undefined) h["Content-Type"] = "application/json";
    const r = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const ct = r.headers.get("Content-Type") || "";
    const data = ct.includes("json") ? await r.json() : await r.text();
    if (r.status === 401) { logout("The token was refused."); throw new Error("unauthorized"); }
    if (!r.ok) { const e = new Error((data && data.message) || r.statusText); e.status = r.status; e.data = data; throw e; }
    return data;
  }
  function say(msg, bad) { const m = $("action-msg"); m.textContent = msg; m.className = bad ? "bad" : ""; }

  function logout(msg) {
    sessionStorage.removeItem(KEY);
    if (streamAbort) streamAbort.abort();
    clearInterval(refreshTimer);
    $("main").hidden = true; $("login").hidden = false; $("logout").hidden = true; $("who").textContent = "";
    $("login-error").textContent = msg || "";
    $("token").focus();
  }

  async function start() {
    try { me = await api("GET", "/api/v1/whoami"); } catch (e) { if (e.message !== "unauthorized") logout(e.message); return; }
    $("login").hidden = true; $("main").hidden = false; $("logout").hidden = false;
    $("who").textContent = me.principal + " (" + me.role + ")";
    $("operator-actions").hidden = roles[me.role] < roles.operator;
    await refresh();
    stream();
    refreshTimer = setInterval(refresh, 15000);
  }

  async function refresh() {
    try {
      const [st, cps, nodes, pend, execs, audit, ver] = await Promise.all([
        api("GET", "/api/v1/cluster/status"), api("GET", "/api/v1/checkpoints"), api("GET", "/api/v1/nodes"),
        api("GET", "/api/v1/approval-requests"), api("GET", "/api/v1/executions"),
        api("GET", "/api/v1/audit?limit=50"), api("GET", "/api/v1/audit/verify")]);
      renderStatus(st); renderGrid(cps, nodes); renderNodes(nodes); renderApprovals(pend);
      renderExecs(execs); renderAudit(audit, ver);
    } catch (e) { if (e.message !== "unauthorized") say("Refresh failed: " + e.message, true); }
  }

  function renderStatus(st) {
    $("cluster-name").textContent = st.cluster ? "· " + st.cluster : "";
    const ds = $("deploy-status"); ds.textContent = st.deployment_status; ds.className = "badge " + st.deployment_status;
    const h = st.cluster_health; const hs = $("health-status"); hs.textContent = h.overall_status; hs.className = "badge " + h.overall_status;
    $("health-asof").textContent = h.as_of ? "as of " + fmt(h.as_of) : h.source;
    $("running").textContent = st.running_execution || "none";
    const nav = $("links"); nav.replaceChildren(...(st.links || []).map((l) => el("a", { href: l.url, target: "_blank", rel: "noopener" }, l.name)));
  }

  function renderGrid(cps, nodes) {
    const t = $("grid");
    t.tHead.replaceChildren(el("tr", {}, el("th", { scope: "col" }, "Checkpoint"), el("th", { scope: "col" }, "Status"),
      nodes.map((n) => el("th", { scope: "col" }, n.name))));
    t.tBodies[0].replaceChildren(...cps.map((c) => el("tr", { "data-checkpoint": c.checkpoint },
      el("th", { scope: "row" }, c.checkpoint, c.destructive_operation ? el("small", {}, "destructive, approval") : c.approval_required ? el("small", {}, "approval") : ""),
      el("td", { class: "cell" }, el("span", { class: c.ledger_status }, c.ledger_status === "pending" ? "not run" : c.ledger_status), el("small", {}, c.ended_at ? fmt(c.ended_at) : c.ledger_status === "pending" ? "" : c.message)),
      nodes.map((n) => {
        const nc = c.nodes[n.name];
        if (!nc) return el("td", { class: "cell" }, el("span", { class: "pending", "aria-label": "not run" }, "—"));
        return el("td", { class: "cell", title: nc.error || nc.summary || "" }, el("span", { class: nc.ledger_status }, nc.ledger_status),
          el("small", {}, fmt(nc.timestamp)));
      }))));
  }

  function renderNodes(nodes) {
    $("nodes").tBodies[0].replaceChildren(...nodes.map((n) => el("tr", {}, el("td", {}, n.name), el("td", { class: "mono" }, n.ip),
      el("td", {}, n.role), el("td", {}, el("span", { class: n.status }, n.status)), el("td", {}, fmt(n.status_as_of)))));
  }

  function planTable(items) {
    const target = (t) => (t ? [t.kind, t.name || t.path || "", t.id ? t.id.slice(0, 12) : ""].filter(Boolean).join(" ") : "");
    return el("table", { class: "plan" }, el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Node"), el("th", { scope: "col" }, "Action"),
      el("th", { scope: "col" }, "Detail"), el("th", { scope: "col" }, "Target"))),
      el("tbody", {}, items.map((it) => el("tr", {}, el("td", {}, it.node), el("td", {}, it.action), el("td", { class: "mono" }, it.detail || ""),
        el("td", { class: "mono" }, target(it.target))))));
  }

  function renderApprovals(pend) {
    $("approvals-count").textContent = pend.length;
    const list = $("approvals-list");
    if (!pend.length) { list.replaceChildren(el("p", { class: "empty" }, "Nothing waits for a decision.")); return; }
    const can = roles[me.role] >= roles.approver;
    // A card stays as it is while its request and digest are unchanged, so a
    // refresh never clears a ticked acknowledgment or a half-typed reason.
    const kept = new Map([...list.querySelectorAll("article[data-request]")].map((a) => [a.dataset.key, a]));
    const cards = pend.map((r) => kept.get(cardKey(r, can)) || approvalCard(r, can));
    // Moving a card that is already in place (replaceChildren removes and
    // re-inserts it) would take the focus from a half-typed reason: touch
    // the list only when its cards or their order changed.
    const now = [...list.children];
    if (now.length === cards.length && cards.every((c, i) => c === now[i])) return;
    list.replaceChildren(...cards);
  }

  function cardKey(r, can) { return [r.id, r.plan_digest, can, me.principal].join(":"); }

  function approvalCard(r, can) {
    const ack = el("input", { type: "checkbox", id: "ack-" + r.id });
    const reason = el("input", { type: "text", id: "reason-" + r.id, placeholder: "Reason (recorded)", "aria-label": "Reason for the decision" });
    const self = r.requested_by === me.principal;
    const decide = async (approved) => {
      if (approved && r.destructive && !ack.checked) { say("Acknowledge the risks first.", true); ack.focus(); return; }
      try {
        const d = await api("POST", "/api/v1/approval-requests/" + r.id + "/decision",
          { approved, plan_digest: r.plan_digest, reason: reason.value, acknowledge_risks: ack.checked });
        say((d.approved ? "Approved " : "Rejected ") + r.checkpoint + " as " + d.by + ".");
      } catch (e) { say("Decision failed: " + e.message, true); }
      refresh();
    };
    return el("article", { class: "approval" + (r.destructive ? " destructive" : ""), "data-request": r.id, "data-key": cardKey(r, can), "aria-labelledby": "ap-h-" + r.id },
      el("h3", { id: "ap-h-" + r.id }, r.checkpoint + (r.destructive ? " — DESTRUCTIVE, no undo" : "")),
      el("p", {}, r.description || ""),
      el("p", {}, "Requested by ", el("strong", {}, r.requested_by || "?"), " at " + fmt(r.requested_at) + "; expires " + fmt(r.expires_at)),
      el("p", {}, "Plan digest: ", el("span", { class: "digest" }, r.plan_digest)),
      r.risks.length ? el("ul", { class: "risks" }, r.risks.map((x) => el("li", {}, x))) : "",
      el("div", { class: "scroll" }, planTable(r.plan)),
      can ? el("div", { class: "buttons" },
        r.destructive ? el("label", { class: "inline", for: ack.id }, ack, "I acknowledge these risks") : "",
        reason,
        el("button", { type: "button", class: "approve", onclick: () => decide(true), disabled: self, title: self ? "You requested this; another approver must decide." : "" }, "Approve " + r.checkpoint),
        el("button", { type: "button", class: "reject", onclick: () => decide(false) }, "Reject")) :
        el("p", { class: "hint" }, "Your role (" + me.role + ") cannot decide; an approver can."));
  }

  function renderExecs(execs) {
    $("executions").tBodies[0].replaceChildren(...execs.slice(0, 20).map((x) => el("tr", { "data-execution": x.execution_id },
      el("td", {}, fmt(x.started_at)), el("td", {}, (x.checkpoint || (x.start_from ? "from " + x.start_from : "all")) + (x.resume ? " (resume)" : "")),
      el("td", {}, x.requested_by), el("td", {}, el("span", { class: x.status }, x.status)), el("td", {}, x.error || x.message || ""))));
  }

  function renderAudit(a, v) {
    const b = $("audit-verify");
    b.textContent = v.ok ? "chain intact (" + v.records + " records)" : "BROKEN at line " + v.line + ": " + v.reason;
    b.className = "badge " + (v.ok ? "ok" : "bad");
    $("audit-table").tBodies[0].replaceChildren(...a.records.slice().reverse().map((r) => el("tr", {},
      el("td", {}, r.seq), el("td", {}, fmt(r.time)), el("td", {}, r.kind), el("td", {}, r.checkpoint || ""),
      el("td", {}, r.actor ? r.actor.principal + " from " + r.actor.remote + ": " + r.actor.method + " " + r.actor.path + " → " + r.actor.status
        : r.decision ? (r.decision.approved ? "approved by " : "rejected by ") + r.decision.by + " (" + r.decision.channel + ")"
        : r.request ? "requested by " + (r.request.requested_by || "?") + ", plan " + r.request.plan_digest
        : (r.outcome || "") + (r.error ? ": " + r.error : "")))));
  }

  function addEvent(e) {
    const ol = $("events");
    const text = [fmt(e.at), e.type, e.checkpoint, e.node, e.status, e.summary, e.error].filter(Boolean).join("  ");
    ol.append(el("li", { class: e.status || "" }, text));
    while (ol.children.length > 200) ol.firstChild.remove();
    ol.scrollTop = ol.scrollHeight;
  }

  // The event stream, read with fetch so that the token goes in a header
  // (EventSource cannot send one). Reconnects with Last-Event-ID.
  async function stream() {
    for (;;) {
      if (!sessionStorage.getItem(KEY)) return;
      streamAbort = new AbortController();
      try {
        const h = { Authorization: "Bearer " + sessionStorage.getItem(KEY), Accept: "text/event-stream" };
        if (lastEventID) h["Last-Event-ID"] = lastEventID;
        const r = await fetch("/api/v1/events", { headers: h, signal: streamAbort.signal });
        if (r.status === 401) { logout("The token was refused."); return; }
        if (!r.ok) throw new Error("status " + r.status);
        $("stream-state").textContent = "live";
        const rd = r.body.getReader(); const dec = new TextDecoder(); let buf = "";
        for (;;) {
          const { value, done } = await rd.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i); buf = buf.slice(i + 2);
            let id = "", type = "message", data = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("id: ")) id = line.slice(4);
              else if (line.startsWith("event: ")) type = line.slice(7);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            if (id) lastEventID = id;
            if (!data) continue;
            if (type === "gap" || type === "overflow") { addEvent({ type, at: new Date().toISOString(), summary: JSON.parse(data).message }); refresh(); continue; }
            addEvent(JSON.parse(data));
            if (/^(approval|execution|checkpoint\.(finished|failed|skipped)|run|node\.finished)/.test(type)) refresh();
          }
        }
      } catch (e) { if (e.name === "AbortError") return; }
      $("stream-state").textContent = "reconnecting";
      await new Promise((res) => setTimeout(res, 2000));
    }
  }

  async function act(fn, okMsg) { try { const r = await fn(); say(okMsg(r)); } catch (e) { say(e.message, true); } refresh(); }

  function showPlan(ans) {
    $("plan-section").hidden = false;
    $("plan-out").replaceChildren(...ans.plans.map((p) => el("div", {},
      el("h3", {}, p.checkpoint + (p.empty ? " — nothing to change" : "")), el("p", { class: "digest mono" }, p.plan_digest),
      p.empty ? "" : planTable(p.items))), ans.error ? el("p", { class: "bad" }, ans.error) : "");
    $("plan-h").focus && $("plan-h").setAttribute("tabindex", "-1"); $("plan-h").focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = $("token").value.trim(); if (!t) return;
      sessionStorage.setItem(KEY, t); $("token").value = ""; start();
    });
    $("logout").addEventListener("click", () => logout("Signed out."));
    $("btn-plan").addEventListener("click", () => { say("Planning…"); act(() => api("POST", "/api/v1/plans", {}).then((a) => { showPlan(a); return a; }), (a) => "Planned " + a.plans.length + " checkpoints."); });
    $("btn-deploy").addEventListener("click", () => act(() => api("POST", "/api/v1/executions", {}), (x) => "Started execution " + x.execution_id + "."));
    $("btn-resume").addEventListener("click", () => act(() => api("POST", "/api/v1/executions", { resume: true }), (x) => "Started resume " + x.execution_id + "."));
    $("btn-cancel").addEventListener("click", () => act(async () => {
      const st = await api("GET", "/api/v1/cluster/status");
      if (!st.running_execution) throw new Error("Nothing runs.");
      return api("POST", "/api/v1/executions/" + st.running_execution + "/cancel");
    }, (x) => "Cancelling " + x.execution_id + "."));
    if (sessionStorage.getItem(KEY)) start(); else $("token").focus();
  });
})();
