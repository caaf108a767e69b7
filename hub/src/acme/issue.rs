//! One issuance (RFC 8555 §7): log in to (or register) the account, order a certificate for
//! the names, answer each authorization's TLS-ALPN-01 challenge through the resolver, wait for
//! the CA to validate, finalize with a fresh key, download the chain.

use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, Order,
    OrderStatus, RetryPolicy,
};

use super::client::HttpsClient;
use super::files::{self, AcmePaths, StoredAccount};
use super::resolver::CertResolver;
use super::{AcmeConfig, AcmeError};

/// How the order is polled while the CA validates and signs: Let's Encrypt usually takes a
/// second or two; two minutes covers a busy CA, and the issuance as a whole is retried.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.5)
    .timeout(Duration::from_secs(120));

/// The problem type a CA answers for an account it no longer knows.
const ACCOUNT_DOES_NOT_EXIST: &str = "urn:ietf:params:acme:error:accountDoesNotExist";

/// A new certificate chain and its private key, both PEM.
pub(crate) struct Issued {
    pub(crate) chain_pem: Vec<u8>,
    pub(crate) key_pem: Vec<u8>,
}

pub(crate) async fn obtain(
    config: &AcmeConfig,
    paths: &AcmePaths,
    client: &HttpsClient,
    resolver: &CertResolver,
) -> Result<Issued, AcmeError> {
    let protocol = |source| protocol_error(config, source);
    let account = account(config, paths, client).await?;
    let identifiers: Vec<Identifier> = config
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = match account.new_order(&NewOrder::new(&identifiers)).await {
        Ok(order) => order,
        Err(instant_acme::Error::Api(problem))
            if problem.r#type.as_deref() == Some(ACCOUNT_DOES_NOT_EXIST) =>
        {
            // The CA forgot the account (deactivated, or a test CA restarted): register anew
            // on the next attempt.
            let _ = std::fs::remove_file(&paths.account);
            return Err(protocol(instant_acme::Error::Api(problem)));
        }
        Err(e) => return Err(protocol(e)),
    };

    let mut challenges = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.map_err(protocol)?;
        let domain = authorization.identifier().to_string();
        match authorization.status {
            // Validated recently for this account: nothing to prove.
            AuthorizationStatus::Valid => continue,
            AuthorizationStatus::Pending => {}
            status => {
                return Err(AcmeError::Validation {
                    domain,
                    detail: format!("its authorization is {status:?}"),
                })
            }
        }
        let mut challenge = authorization
            .challenge(ChallengeType::TlsAlpn01)
            .ok_or_else(|| AcmeError::NoTlsAlpn(domain.clone()))?;
        let digest = challenge.key_authorization().digest();
        challenges.push(resolver.add_challenge(&domain, digest.as_ref())?);
        challenge
            .set_ready()
            .await
            .map_err(|e| validation_error(config, &domain, e))?;
        tracing::info!(%domain, "ACME challenge ready; waiting for the CA to validate");
    }

    let status = order
        .poll_ready(&POLL)
        .await
        .map_err(|e| validation_error(config, &config.domains.join(", "), e))?;
    // Validation is over either way: stop answering `acme-tls/1`.
    drop(challenges);
    if status != OrderStatus::Ready {
        return Err(why_invalid(config, &mut order, status).await);
    }
    let key_pem = order.finalize().await.map_err(protocol)?;
    let chain_pem = order.poll_certificate(&POLL).await.map_err(protocol)?;
    Ok(Issued {
        chain_pem: chain_pem.into_bytes(),
        key_pem: key_pem.into_bytes(),
    })
}

/// A problem the CA reports while validating is about reaching the hub: say how to fix it.
fn validation_error(config: &AcmeConfig, domain: &str, source: instant_acme::Error) -> AcmeError {
    match source {
        instant_acme::Error::Api(problem) => AcmeError::Validation {
            domain: domain.to_owned(),
            detail: problem.to_string(),
        },
        source => protocol_error(config, source),
    }
}

fn protocol_error(config: &AcmeConfig, source: instant_acme::Error) -> AcmeError {
    AcmeError::Protocol {
        directory: config.directory.clone(),
        source,
    }
}

/// The stored account, or a new one (the operator agreed to the CA's terms by configuring it;
/// the README says so).
async fn account(
    config: &AcmeConfig,
    paths: &AcmePaths,
    client: &HttpsClient,
) -> Result<Account, AcmeError> {
    let protocol = |source| protocol_error(config, source);
    let builder = || Account::builder_with_http(Box::new(client.clone()));
    let contact: Vec<&str> = config.contact.iter().map(String::as_str).collect();
    if let Some(stored) = files::load_account(paths) {
        let credentials = serde_json::from_value(stored.credentials.clone())
            .map_err(|e| protocol(instant_acme::Error::Json(e)))?;
        let account = builder()
            .from_credentials(credentials)
            .await
            .map_err(protocol)?;
        if stored.contact != config.contact {
            account.update_contacts(&contact).await.map_err(protocol)?;
            files::save_account(
                paths,
                &StoredAccount {
                    contact: config.contact.clone(),
                    credentials: stored.credentials,
                },
            )?;
            tracing::info!(contact = ?config.contact, "updated the ACME account's contact");
        }
        return Ok(account);
    }
    let (account, credentials) = builder()
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            config.directory.clone(),
            None,
        )
        .await
        .map_err(protocol)?;
    let credentials =
        serde_json::to_value(&credentials).map_err(|e| protocol(instant_acme::Error::Json(e)))?;
    files::save_account(
        paths,
        &StoredAccount {
            contact: config.contact.clone(),
            credentials,
        },
    )?;
    tracing::info!(id = account.id(), directory = %config.directory, "registered an ACME account");
    Ok(account)
}

/// The CA's reason for an order that did not become ready: the first failed challenge's error.
async fn why_invalid(config: &AcmeConfig, order: &mut Order, status: OrderStatus) -> AcmeError {
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authorization)) = authorizations.next().await {
        let Ok(state) = authorization.refresh().await else {
            continue;
        };
        let domain = state.identifier().to_string();
        if let Some(error) = state.challenges.iter().find_map(|c| c.error.as_ref()) {
            return AcmeError::Validation {
                domain,
                detail: error.to_string(),
            };
        }
    }
    AcmeError::Order {
        domains: config.domains.join(", "),
        status: format!("{status:?}"),
        detail: "the CA gave no reason".into(),
    }
}
