"""Views, one module per area: check access, call one service or query, render a page or a fragment."""
