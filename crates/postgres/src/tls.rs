//! TLS to PostgreSQL, used when the URL says `sslmode=require`: certificates are verified
//! against the public web roots plus, for a private CA, the file named by libpq's
//! `sslrootcert` (in the URL) or `PGSSLROOTCERT`. Other modes connect without TLS (a
//! server's self-signed default certificate must not break `prefer`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Removes `sslrootcert=…` from the URL's query (tokio-postgres refuses options it does
/// not know) and returns it apart.
pub fn split_root_cert(url: &str) -> (String, Option<PathBuf>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut root = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("sslrootcert=") {
            Some(path) => {
                root = Some(PathBuf::from(path));
                false
            }
            None => true,
        })
        .collect();
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, root)
}

/// A TLS connector trusting the public roots and `extra_root` (or `PGSSLROOTCERT`).
pub fn connector(extra_root: Option<&Path>) -> Result<MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let from_env = std::env::var_os("PGSSLROOTCERT").map(PathBuf::from);
    if let Some(path) = extra_root.map(Path::to_path_buf).or(from_env) {
        let pem =
            std::fs::read(&path).map_err(|e| format!("sslrootcert `{}`: {e}", path.display()))?;
        let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("sslrootcert `{}`: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "sslrootcert `{}`: no PEM certificate in it",
                path.display()
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("sslrootcert `{}`: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslrootcert_is_taken_out_of_the_query() {
        assert_eq!(
            split_root_cert(
                "postgres://h/db?sslmode=require&sslrootcert=/ca.pem&application_name=x"
            ),
            (
                "postgres://h/db?sslmode=require&application_name=x".to_string(),
                Some(PathBuf::from("/ca.pem"))
            )
        );
        assert_eq!(
            split_root_cert("postgres://h/db?sslrootcert=/ca.pem"),
            (
                "postgres://h/db".to_string(),
                Some(PathBuf::from("/ca.pem"))
            )
        );
        assert_eq!(
            split_root_cert("postgres://h/db"),
            ("postgres://h/db".to_string(), None)
        );
    }
}
