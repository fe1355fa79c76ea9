// A plain page that speaks roomcast's protocol. User text only ever goes through textContent.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var params = new URLSearchParams(location.search);
  $("room").value = params.get("room") || "lobby";
  $("username").value = localStorage.getItem("roomcast.username") || "";
  var lastId;

  function line(cls, name, text) {
    var li = document.createElement("li");
    li.className = cls;
    if (name) {
      var b = document.createElement("b");
      b.className = "name";
      b.textContent = name + ": ";
      li.appendChild(b);
    }
    li.appendChild(document.createTextNode(text));
    $("messages").appendChild(li);
    li.scrollIntoView({ block: "end" });
  }

  $("enter").addEventListener("submit", function (e) {
    e.preventDefault();
    var username = $("username").value.trim();
    var room = $("room").value.trim();
    localStorage.setItem("roomcast.username", username);
    $("enter").hidden = true;
    $("chat").hidden = false;
    var socket = io({ query: { roomid: room } });
    socket.on("connect", function () {
      $("status").textContent = "connected to " + room;
      socket.emit("join", lastId ? { username: username, since: lastId } : { username: username }, function (ack) {
        if (!ack.ok) line("notice", "", ack.error.message);
      });
    });
    socket.on("disconnect", function () { $("status").textContent = "reconnecting…"; });
    socket.on("connect_error", function (err) { $("status").textContent = "offline: " + err.message; });
    socket.on("message", function (msg) {
      var d = msg.data;
      switch (msg.event) {
        case "history":
          d.messages.forEach(function (m) { lastId = m.id; line(m.username === username ? "me" : "", m.username, m.text); });
          break;
        case "broadcast_say":
          lastId = d.id;
          line(d.username === username ? "me" : "", d.username, d.text);
          break;
        case "join": line("notice", "", d.username + " joined"); break;
        case "broadcast_quit": line("notice", "", d.username + " left"); break;
        case "error": line("notice", "", d.message); break;
      }
    });
    $("send").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var text = $("text").value;
      if (!text.trim()) return;
      socket.emit("say", { text: text }, function (ack) {
        if (ack.ok) $("text").value = "";
        else line("notice", "", ack.error.message);
      });
    });
  });
})();
