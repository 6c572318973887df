//! Identity and organization calls of the synthetic server:
//!
//! - STS `GetCallerIdentity` and `AssumeRole` (XML; the issued access key names the member
//!   account, so later requests signed with it act as that member; AccessDenied for an
//!   account outside the organization or one the caller denies);
//! - Organizations `ListAccounts` (pages of at most 20, `NextToken`), the management
//!   account first, suspended members with status `SUSPENDED`.

use serde_json::{json, Value};

use crate::fleet::MANAGEMENT_ACCOUNT_ID;
use crate::http::{form_field, Request, Response};
use crate::server::{access_key_for, State};
use crate::wire::{json_body, json_error, json_ok, query_error, sts_ok, xml_escape, Operation};

pub(crate) fn answer(
    state: &mut State,
    request: &Request,
    op: &Operation,
    account: &str,
) -> Option<Response> {
    Some(match (op.service.as_str(), op.name.as_str()) {
        ("sts", "GetCallerIdentity") => sts_ok(
            "GetCallerIdentity",
            &format!(
                "<Arn>arn:aws:sts::{account}:assumed-role/synth/session</Arn>\
                 <UserId>AROASYNTH:session</UserId><Account>{account}</Account>"
            ),
        ),
        ("sts", "AssumeRole") => assume_role(state, request),
        ("organizations", "ListAccounts") => list_accounts(state, &json_body(request)),
        _ => return None,
    })
}

fn assume_role(state: &State, request: &Request) -> Response {
    let role_arn = form_field(&request.body, "RoleArn").unwrap_or_default();
    let session = form_field(&request.body, "RoleSessionName").unwrap_or_default();
    let target = role_arn.split(':').nth(4).unwrap_or_default().to_string();
    let known = target == MANAGEMENT_ACCOUNT_ID || state.accounts.contains_key(&target);
    if !known || state.deny_assume_role.contains(&target) {
        return query_error(
            403,
            "Sender",
            "AccessDenied",
            &format!(
                "User: arn:aws:iam::{MANAGEMENT_ACCOUNT_ID}:user/synth is not authorized to \
                 perform: sts:AssumeRole on resource: {role_arn}"
            ),
        );
    }
    let role = role_arn.rsplit('/').next().unwrap_or_default();
    let expires = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    sts_ok(
        "AssumeRole",
        &format!(
            "<Credentials><AccessKeyId>{}</AccessKeyId>\
             <SecretAccessKey>synthetic-secret</SecretAccessKey>\
             <SessionToken>synthetic-session-token</SessionToken>\
             <Expiration>{expires}</Expiration></Credentials>\
             <AssumedRoleUser><AssumedRoleId>AROASYNTH:{}</AssumedRoleId>\
             <Arn>arn:aws:sts::{target}:assumed-role/{}/{}</Arn></AssumedRoleUser>",
            access_key_for(&target),
            xml_escape(&session),
            xml_escape(role),
            xml_escape(&session)
        ),
    )
}

fn account_json(id: &str, active: bool) -> Value {
    let status = if active { "ACTIVE" } else { "SUSPENDED" };
    json!({
        "Id": id,
        "Arn": format!("arn:aws:organizations::{MANAGEMENT_ACCOUNT_ID}:account/o-synth/{id}"),
        "Email": format!("{id}@example.com"),
        "Name": format!("account-{id}"),
        "Status": status,
        "State": status,
        "JoinedMethod": "CREATED",
        "JoinedTimestamp": 1_700_000_000.0,
    })
}

/// The offset a page token of our own (`<prefix><offset>`) stands for; no token is 0.
pub(crate) fn parse_offset(token: Option<&str>, prefix: &str) -> Result<usize, ()> {
    match token {
        None | Some("") => Ok(0),
        Some(token) => token
            .strip_prefix(prefix)
            .and_then(|n| n.parse().ok())
            .ok_or(()),
    }
}

fn list_accounts(state: &State, body: &Value) -> Response {
    let max = body["MaxResults"].as_u64().unwrap_or(20);
    if !(1..=20).contains(&max) {
        return json_error(400, "InvalidInputException", "MaxResults must be 1 to 20");
    }
    let Ok(offset) = parse_offset(body["NextToken"].as_str(), "synth-accounts-") else {
        return json_error(400, "InvalidInputException", "Invalid NextToken");
    };
    let all: Vec<Value> = std::iter::once(account_json(MANAGEMENT_ACCOUNT_ID, true))
        .chain(
            state
                .accounts
                .iter()
                .map(|(id, a)| account_json(id, a.active)),
        )
        .collect();
    let end = (offset + max as usize).min(all.len());
    let mut answer = json!({"Accounts": all[offset.min(end)..end]});
    if end < all.len() {
        answer["NextToken"] = json!(format!("synth-accounts-{end}"));
    }
    json_ok(&answer)
}
