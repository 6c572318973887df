//! `[accounts]`: where the accounts come from and how each is entered, resolved with the
//! file, line and field of every error.

use serde::Deserialize;
use toml::Spanned;

use super::checks::*;
use super::resolve::{checked_list, checked_value};
use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccounts {
    source: Option<Spanned<String>>,
    ids: Option<Vec<Spanned<String>>>,
    organizational_units: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    role_name: Option<Spanned<String>>,
    external_id: Option<Spanned<String>>,
    session_name: Option<Spanned<String>>,
    session_duration_seconds: Option<Spanned<i64>>,
}

fn account_id(id: &str) -> Result<String, String> {
    check_account_id(id).map(|()| id.to_string())
}

pub(super) fn resolve(
    raw: Option<RawAccounts>,
    src: &Source,
) -> Result<AccountsConfig, ConfigError> {
    let Some(a) = raw else {
        return Ok(AccountsConfig {
            source: AccountSource::Current,
            exclude: Vec::new(),
            role_name: DEFAULT_ROLE_NAME.to_string(),
            external_id: None,
            session_name: DEFAULT_SESSION_NAME.to_string(),
            session_duration_seconds: None,
            shard: None,
        });
    };
    let ids = match a.ids {
        None => None,
        Some(ids) => Some(checked_list(src, ids, "accounts.ids", account_id)?),
    };
    // Where the list starts, for the error if the source does not take OUs.
    let ous_span = a
        .organizational_units
        .as_ref()
        .and_then(|l| l.first())
        .map(Spanned::span);
    let ous = match a.organizational_units {
        None => None,
        Some(ous) => Some(checked_list(
            src,
            ous,
            "accounts.organizational_units",
            |id| check_ou_id(id).map(|()| id.to_string()),
        )?),
    };
    let source = match a.source {
        None => {
            if ids.is_some() {
                AccountSource::List(ids.clone().unwrap_or_default())
            } else if ous.is_some() {
                AccountSource::Organization {
                    organizational_units: ous.clone().unwrap_or_default(),
                }
            } else {
                AccountSource::Current
            }
        }
        Some(s) => match s.get_ref().as_str() {
            "organization" => {
                if ids.is_some() {
                    return Err(ConfigError::at(
                        src,
                        s.span(),
                        "accounts.ids",
                        "only used with source = \"list\"",
                    ));
                }
                AccountSource::Organization {
                    organizational_units: ous.clone().unwrap_or_default(),
                }
            }
            "list" => {
                let list = ids.clone().unwrap_or_default();
                if list.is_empty() {
                    return Err(ConfigError::at(
                        src,
                        s.span(),
                        "accounts.ids",
                        "source = \"list\" needs at least one account id in `ids`",
                    ));
                }
                AccountSource::List(list)
            }
            "current" => AccountSource::Current,
            other => {
                return Err(ConfigError::at(
                    src,
                    s.span(),
                    "accounts.source",
                    format!(
                    "unknown source {other:?}: expected \"organization\", \"list\" or \"current\""
                ),
                ))
            }
        },
    };
    if ous.is_some() && !matches!(source, AccountSource::Organization { .. }) {
        return Err(ConfigError::at(
            src,
            ous_span.unwrap_or(0..0),
            "accounts.organizational_units",
            "only used with source = \"organization\"",
        ));
    }
    let exclude = checked_list(src, a.exclude, "accounts.exclude", account_id)?;
    let role_name = checked_value(src, a.role_name, "accounts.role_name", check_role_name)?
        .unwrap_or_else(|| DEFAULT_ROLE_NAME.to_string());
    let external_id = checked_value(
        src,
        a.external_id,
        "accounts.external_id",
        check_external_id,
    )?;
    let session_name = checked_value(
        src,
        a.session_name,
        "accounts.session_name",
        check_session_name,
    )?
    .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string());
    let session_duration_seconds = match a.session_duration_seconds {
        None => None,
        Some(d) => {
            let v = *d.get_ref();
            if !(900..=43_200).contains(&v) {
                return Err(ConfigError::at(
                    src,
                    d.span(),
                    "accounts.session_duration_seconds",
                    "must be between 900 and 43200",
                ));
            }
            Some(v as i32)
        }
    };
    Ok(AccountsConfig {
        source,
        exclude,
        role_name,
        external_id,
        session_name,
        session_duration_seconds,
        shard: None,
    })
}
