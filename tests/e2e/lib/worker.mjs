// The phone app's service worker as the push tests see it: its Playwright handle, the
// notifications it shows, and pushes delivered to it through CDP
// (`ServiceWorker.deliverPushMessage`; headless Chromium has no push service offline).

/** Polls `fn` until it returns a truthy value; throws `what` after `ms`. */
export async function until(fn, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The app's service worker in `phone`'s browser context. */
export async function appWorker(phone) {
  return until(() => phone.browserContext.serviceWorkers().find((w) => w.url().endsWith("/sw.js")), "the service worker");
}

/** Notifications the worker shows now. */
export async function shownNotifications(phone) {
  return (await appWorker(phone)).evaluate(async () =>
    (await self.registration.getNotifications()).map((n) => ({
      title: n.title,
      body: n.body,
      tag: n.tag,
      image: n.image,
      requireInteraction: n.requireInteraction,
      renotify: n.renotify,
      actions: n.actions.map((a) => ({ action: a.action, title: a.title })),
      data: n.data,
    })),
  );
}

/** Delivers a push message whose (decrypted) text is `data` to the app's worker at `baseUrl`. */
export async function deliverPush(phone, baseUrl, data) {
  const cdp = await phone.browserContext.newCDPSession(phone.page);
  try {
    const registration = new Promise((resolve) =>
      cdp.on("ServiceWorker.workerRegistrationUpdated", ({ registrations }) => {
        const r = registrations.find((x) => x.scopeURL === `${baseUrl}/` && !x.isDeleted);
        if (r) resolve(r.registrationId);
      }),
    );
    await cdp.send("ServiceWorker.enable");
    const registrationId = await Promise.race([
      registration,
      new Promise((_, reject) => setTimeout(() => reject(new Error("no service worker registration over CDP")), 10_000)),
    ]);
    await cdp.send("ServiceWorker.deliverPushMessage", { origin: baseUrl, registrationId, data });
  } finally {
    await cdp.detach().catch(() => {});
  }
}
