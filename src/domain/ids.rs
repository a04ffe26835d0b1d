use super::Invalid;

/// The id of a customer, product or order: client-supplied or a server UUIDv7.
///
/// Pattern `^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`, the same as the
/// `write.entity_id` domain in the database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityId(String);

impl EntityId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let mut chars = raw.chars();
        let Some(first) = chars.next() else {
            return Err(Invalid("must not be empty".into()));
        };
        if raw.len() > Self::MAX_LEN {
            return Err(Invalid(format!(
                "must be at most {} characters, got {}",
                Self::MAX_LEN,
                raw.chars().count()
            )));
        }
        if !first.is_ascii_alphanumeric() {
            return Err(Invalid(
                "must start with a letter or a digit (pattern ^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$)"
                    .into(),
            ));
        }
        if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || "._:-".contains(*c))) {
            return Err(Invalid(format!(
                "may contain only letters, digits and . _ : - (found {bad:?}; pattern ^[A-Za-z0-9][A-Za-z0-9._:-]{{0,63}}$)"
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A new time-ordered id for an entity the client did not name.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EntityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simple_client_id_is_accepted() {
        for id in ["order-001", "customer-123", "prod-1", "a", "A.b_c:d-e", "0"] {
            assert_eq!(EntityId::parse(id).map(|i| i.0), Ok(id.to_owned()), "{id}");
        }
    }

    #[test]
    fn an_id_of_64_characters_is_accepted_and_65_is_rejected() {
        assert!(EntityId::parse(&"a".repeat(64)).is_ok());
        assert!(EntityId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn an_empty_id_is_rejected() {
        assert!(EntityId::parse("").is_err());
    }

    #[test]
    fn an_id_starting_with_punctuation_is_rejected() {
        for id in ["-a", ".a", "_a", ":a"] {
            assert!(EntityId::parse(id).is_err(), "{id}");
        }
    }

    #[test]
    fn an_id_with_spaces_quotes_slashes_or_unicode_is_rejected() {
        for id in ["a b", "a'b", "a;drop", "a/b", "é", "a\0b", "a\u{202e}b"] {
            assert!(EntityId::parse(id).is_err(), "{id:?}");
        }
    }

    #[test]
    fn a_generated_id_satisfies_the_pattern_and_is_unique() {
        let a = EntityId::generate();
        let b = EntityId::generate();
        assert!(EntityId::parse(a.as_str()).is_ok());
        assert_ne!(a, b);
    }
}
