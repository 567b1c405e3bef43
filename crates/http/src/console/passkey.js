// Passkeys in the console: the one thing a page cannot do without a script is talk to the
// authenticator. Each button names its ceremony in data-passkey; the script asks the API for
// the options, hands them to the browser, and sends the authenticator's answer back.
(function () {
  'use strict';

  function fromB64(text) {
    var b64 = text.replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) { b64 += '='; }
    var raw = atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toB64(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = '';
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function ids(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: fromB64(c.id) }); });
  }

  function creationOptions(options) {
    var o = Object.assign({}, options.publicKey);
    o.challenge = fromB64(o.challenge);
    o.user = Object.assign({}, o.user, { id: fromB64(o.user.id) });
    o.excludeCredentials = ids(o.excludeCredentials);
    delete o.hints;
    return { publicKey: o };
  }

  function requestOptions(options) {
    var o = Object.assign({}, options.publicKey);
    o.challenge = fromB64(o.challenge);
    o.allowCredentials = ids(o.allowCredentials);
    delete o.hints;
    return { publicKey: o };
  }

  // The credential as the server's library reads it: the same envelope for both ceremonies,
  // with the response's fields of each.
  function encoded(credential, response) {
    return {
      id: credential.id,
      rawId: toB64(credential.rawId),
      type: credential.type,
      response: response,
      extensions: credential.getClientExtensionResults()
    };
  }

  function created(credential) {
    var r = credential.response;
    return encoded(credential, {
      attestationObject: toB64(r.attestationObject),
      clientDataJSON: toB64(r.clientDataJSON),
      transports: r.getTransports ? r.getTransports() : []
    });
  }

  function asserted(credential) {
    var r = credential.response;
    return encoded(credential, {
      authenticatorData: toB64(r.authenticatorData),
      clientDataJSON: toB64(r.clientDataJSON),
      signature: toB64(r.signature),
      userHandle: r.userHandle ? toB64(r.userHandle) : null
    });
  }

  function call(path, body) {
    return fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.text().then(function (text) {
        var json = text ? JSON.parse(text) : {};
        if (!response.ok) { throw new Error(json.detail || 'The server refused it.'); }
        return json;
      });
    });
  }

  var ceremonies = {
    register: function (button) {
      var field = document.getElementById(button.dataset.nameField);
      var name = field && field.value.trim();
      if (!name) { return Promise.reject(new Error('Give the passkey a name first.')); }
      // On the page of a mailed enrollment link, its token goes with the options.
      var link = document.getElementById('passkey-enrollment');
      return call('/v1/me/passkeys/options', link ? { enrollment: link.value } : null).then(function (started) {
        return navigator.credentials.create(creationOptions(started.options)).then(function (credential) {
          return call('/v1/me/passkeys', { ceremony: started.ceremony, name: name, credential: created(credential) });
        });
      });
    },
    'sign-in': function () {
      return call('/v1/auth/passkey/options').then(function (started) {
        return navigator.credentials.get(requestOptions(started.options)).then(function (credential) {
          return call('/v1/auth/passkey', { ceremony: started.ceremony, credential: asserted(credential) });
        });
      });
    },
    'second-factor': function (button) {
      var challenge = button.dataset.challenge;
      return call('/v1/auth/login/passkey/options', { challenge: challenge }).then(function (started) {
        return navigator.credentials.get(requestOptions(started.options)).then(function (credential) {
          return call('/v1/auth/login/passkey', {
            challenge: challenge, ceremony: started.ceremony, credential: asserted(credential)
          });
        });
      });
    },
    reauthenticate: function () {
      return call('/v1/me/reauthenticate/passkey/options').then(function (started) {
        return navigator.credentials.get(requestOptions(started.options)).then(function (credential) {
          return call('/v1/me/reauthenticate/passkey', { ceremony: started.ceremony, credential: asserted(credential) });
        });
      });
    }
  };

  // Where to go once done: the server sends a path of this site only, and the page checks it
  // again as the browser reads it, so that no markup can send the user to another origin.
  function ownPage(next) {
    try {
      var url = new URL(next || window.location.pathname, window.location.href);
      if (url.origin === window.location.origin) { return url.href; }
    } catch (e) { /* not a URL at all */ }
    return '/';
  }

  function say(button, message) {
    var status = document.getElementById(button.dataset.status);
    if (status) { status.textContent = message; }
  }

  document.querySelectorAll('[data-passkey]').forEach(function (button) {
    var ceremony = ceremonies[button.dataset.passkey];
    if (!ceremony) { return; }
    if (!window.PublicKeyCredential) {
      button.disabled = true;
      say(button, 'This browser cannot use passkeys.');
      return;
    }
    button.hidden = false;
    button.addEventListener('click', function () {
      button.disabled = true;
      say(button, 'Waiting for your passkey…');
      ceremony(button).then(function () {
        window.location.href = ownPage(button.dataset.next);
      }, function (error) {
        button.disabled = false;
        say(button, error.name === 'NotAllowedError' ? 'Cancelled, or no passkey answered.' : error.message);
      });
    });
  });
})();
