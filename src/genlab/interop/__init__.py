"""Back ends over other libraries' models, behind genlab's generation contract."""
