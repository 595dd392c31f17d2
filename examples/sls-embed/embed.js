// The embedding page's half of the SLS token refresh (seed: "Extend the validity periods of URLs to
// embedded console pages"). The SLS iframe posts {type: 'refreshToken', ticket} to this page; the
// page asks its own server for a fresh access token (callApi) and posts
// {type: 'applyAccessToken', accessToken, ticket} back to the iframe.
//
// callApi() is this site's nginx, which proxies /api/sls-access-token to ticketd's unix socket
// (GET /v1/sls/{name}/access-token, answered as {"accessToken": "...", "ticket": "..."}).
//
// Include it after the iframe: <iframe id="myIframe" src="...share URL...&supportRefreshToken=true">
// and <script src="embed.js"></script>. The path and the iframe id can be changed on the script tag:
// <script src="embed.js" data-api="/api/sls-access-token" data-iframe="myIframe"></script>.
(function () {
  'use strict';
  const script = document.currentScript;
  const API = (script && script.dataset.api) || '/api/sls-access-token';
  const IFRAME_ID = (script && script.dataset.iframe) || 'myIframe';

  async function callApi() {
    const response = await fetch(API, { cache: 'no-store', credentials: 'same-origin' });
    if (!response.ok) {
      throw new Error(`${API} answered ${response.status}: ${await response.text()}`);
    }
    return response.json(); // {accessToken, ticket}
  }

  window.addEventListener('message', async (e) => {
    if (e?.data?.type !== 'refreshToken') return;
    const iframe = document.getElementById(IFRAME_ID);
    // Answer only our own iframe, and only at the origin that asked: the token never goes to '*'.
    if (!iframe || e.source !== iframe.contentWindow) return;
    let answer;
    try {
      answer = await callApi();
    } catch (err) {
      console.error('sls-embed: no access token to answer refreshToken:', err);
      return;
    }
    iframe.contentWindow.postMessage(
      {
        // The value is fixed as applyAccessToken.
        type: 'applyAccessToken',
        // The access token ticketd got with RefreshToken.
        accessToken: answer.accessToken,
        // The ticket that access token belongs to. It is the iframe's own ticket unless ticketd had
        // to mint a new one with CreateTicket (then the share URL changes too: see README.md).
        ticket: answer.ticket || e.data.ticket,
      },
      e.origin
    );
  });
})();
