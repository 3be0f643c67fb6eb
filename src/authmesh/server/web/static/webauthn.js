// Passkeys: the one script of authmesh's pages, loaded only where a passkey is used.
//
// A button with data-webauthn="create" or "get" reads the options the server put in
// its form's data-options attribute, asks the browser's authenticator, and submits
// the form with the answer in its hidden "credential" field. Everything else
// (challenge, checks) is the server's; the forms work without this script for
// every step except the passkey itself.
"use strict";

(function () {
  function fromB64url(text) {
    const pad = "=".repeat((4 - (text.length % 4)) % 4);
    const raw = atob((text + pad).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
  }

  function toB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let raw = "";
    bytes.forEach((b) => { raw += String.fromCharCode(b); });
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(json) {
    const o = JSON.parse(json);
    o.challenge = fromB64url(o.challenge);
    o.user.id = fromB64url(o.user.id);
    o.excludeCredentials = (o.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
    return { publicKey: o };
  }

  function requestOptions(json) {
    const o = JSON.parse(json);
    o.challenge = fromB64url(o.challenge);
    o.allowCredentials = (o.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
    return { publicKey: o };
  }

  function encode(credential) {
    const r = credential.response;
    const response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      response.userHandle = r.userHandle ? toB64url(r.userHandle) : null;
    }
    return JSON.stringify({
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || null,
    });
  }

  async function run(button) {
    const form = button.form;
    const status = document.getElementById("passkey-status");
    const say = (text) => { if (status) { status.textContent = text; } };
    if (!window.PublicKeyCredential) {
      say("This browser cannot use passkeys.");
      return;
    }
    button.disabled = true;
    say("Follow your browser's prompt…");
    try {
      const options = form.dataset.options;
      const credential = button.dataset.webauthn === "create"
        ? await navigator.credentials.create(creationOptions(options))
        : await navigator.credentials.get(requestOptions(options));
      form.elements.credential.value = encode(credential);
      say("Checking…");
      form.submit();
    } catch (error) {
      say("The passkey was not used (" + error.name + "). You can try again.");
      button.disabled = false;
    }
  }

  document.querySelectorAll("button[data-webauthn]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", (event) => {
      event.preventDefault();
      run(button);
    });
  });
})();
