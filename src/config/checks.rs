//! Checks of single values (account ids, regions, IAM names, tag keys), shared by the config
//! and the command line.

pub fn check_account_id(id: &str) -> Result<(), String> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("{id:?} is not an AWS account id (12 digits)"))
    }
}

pub fn check_region(region: &str) -> Result<(), String> {
    // e.g. us-east-1, eu-central-2, us-gov-west-1, cn-northwest-1, ap-southeast-5
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{region:?} is not an AWS region name (like \"us-east-1\")"
        ))
    }
}

pub(super) fn check_ou_id(id: &str) -> Result<(), String> {
    let is_lower_alnum = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let ok = if let Some(rest) = id.strip_prefix("ou-") {
        rest.split_once('-').is_some_and(|(a, b)| {
            (4..=32).contains(&a.len())
                && (8..=32).contains(&b.len())
                && is_lower_alnum(a)
                && is_lower_alnum(b)
        })
    } else if let Some(rest) = id.strip_prefix("r-") {
        (4..=32).contains(&rest.len()) && is_lower_alnum(rest)
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{id:?} is not an organizational unit id (like \"ou-ab12-cdefghij\") or root id (\"r-ab12\")"))
    }
}

pub(super) fn iam_chars(s: &str, extra: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) || extra.contains(c))
}

pub(super) fn check_role_name(name: &str) -> Result<(), String> {
    // A role name may carry a path ("team/EcrFleetSpoke"); the name part is 1..64 characters.
    let last = name.rsplit('/').next().unwrap_or(name);
    if !last.is_empty() && last.len() <= 64 && iam_chars(name, "/") && !name.starts_with('/') {
        Ok(())
    } else {
        Err(format!("{name:?} is not an IAM role name (1-64 of letters, digits and +=,.@-_, optionally after a path)"))
    }
}

pub(super) fn check_session_name(name: &str) -> Result<(), String> {
    if (2..=64).contains(&name.len()) && iam_chars(name, "") {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid role session name (2-64 of letters, digits and +=,.@-_)"
        ))
    }
}

pub(super) fn check_external_id(id: &str) -> Result<(), String> {
    if (2..=1224).contains(&id.len()) && iam_chars(id, ":/") {
        Ok(())
    } else {
        Err("must be 2-1224 of letters, digits and +=,.@:/-_".to_string())
    }
}

pub(super) fn check_tag_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.chars().count() > 128 {
        Err(format!("{key:?} is not a valid tag key (1-128 characters)"))
    } else {
        Ok(())
    }
}
