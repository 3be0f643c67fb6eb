// Ask twice a second whether the session still stands; the auth server's revocation
// feed makes the services refuse a blocked user's token within milliseconds.
const check = async () => {
  try {
    const answer = await fetch("/api/session", { cache: "no-store" });
    if (answer.ok && !(await answer.json()).signed_in) {
      window.location.assign("/");
      return;
    }
  } catch (_) { /* the web app is restarting: try again */ }
  setTimeout(check, 500);
};
setTimeout(check, 500);
