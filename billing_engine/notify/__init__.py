"""E-notifications: the outbox sender (e-mail over SMTP, SMS through an HTTP gateway),
notice templates in Polish and English, customer preferences and unsubscribe links."""
