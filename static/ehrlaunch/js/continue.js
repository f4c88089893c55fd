// Follow the page's "continue" link at once (a server redirect there would be blocked by
// the previous page's CSP form-action; a link is not). Without script, the link is clicked.
const link = document.getElementById("continue");
if (link) window.location.replace(link.href);
