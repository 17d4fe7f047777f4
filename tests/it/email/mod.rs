//! The e-mail channel (issue 13): the SMTP adapter against a real aiosmtpd server
//! ([`smtp_adapter`]) and the HTTP POST adapter against a real HTTP server
//! ([`http_adapter`]), both on loopback.

mod http_adapter;
mod smtp_adapter;
