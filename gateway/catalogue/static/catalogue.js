// Starts Swagger UI on an API page. Kept out of the HTML so the CSP can forbid inline scripts.
(function () {
  var node = document.getElementById("swagger-ui");
  if (!node || typeof SwaggerUIBundle === "undefined") { return; }
  window.ui = SwaggerUIBundle({
    url: node.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: false,
    tryItOutEnabled: true,
    displayRequestDuration: true,
  });
})();
