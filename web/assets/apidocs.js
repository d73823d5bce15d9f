// Starts Swagger UI on /api/docs (the CSP allows no inline script).
(function () {
  var el = document.getElementById("swagger-ui");
  if (!el || typeof SwaggerUIBundle === "undefined") return;
  SwaggerUIBundle({ url: el.dataset.url, dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null, tryItOutEnabled: false });
})();
