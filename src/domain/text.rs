use super::{has_control_chars, Invalid};

fn bounded_text(raw: &str, max: usize) -> Result<String, Invalid> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(Invalid("must not be blank".into()));
    }
    let len = trimmed.chars().count();
    if len > max {
        return Err(Invalid(format!(
            "must be at most {max} characters, got {len}"
        )));
    }
    if has_control_chars(trimmed) {
        return Err(Invalid(
            "must not contain control characters (NUL, newline, tab, ...)".into(),
        ));
    }
    Ok(trimmed.to_owned())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, Invalid> {
                bounded_text(raw, Self::MAX_LEN).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

text_type!(
    /// A customer's name: 1 to 200 characters after trimming, no control characters.
    PersonName,
    200
);
text_type!(
    /// A product's name: 1 to 200 characters after trimming, no control characters.
    ProductName,
    200
);
text_type!(
    /// Why an order was cancelled: 1 to 500 characters, no control characters.
    CancelReason,
    500
);

/// An e-mail address: one `@` with something on each side, no spaces, at
/// most 254 characters. Deliverability is not our business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(Invalid("must not be blank".into()));
        }
        if s.len() > Self::MAX_LEN {
            return Err(Invalid(format!(
                "must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        let valid = match s.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            }
            None => false,
        };
        if !valid {
            return Err(Invalid(format!(
                "{s:?} is not an e-mail address (expected name@domain)"
            )));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How many of a product an order line holds: 1 to 1,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i32);

impl Quantity {
    pub const MAX: i64 = 1_000_000;

    pub fn parse(raw: i64) -> Result<Self, Invalid> {
        if raw < 1 {
            return Err(Invalid(format!("must be at least 1, got {raw}")));
        }
        if raw > Self::MAX {
            return Err(Invalid(format!("must be at most {}, got {raw}", Self::MAX)));
        }
        // In range 1..=1_000_000, so it fits an i32.
        Ok(Self(raw as i32))
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_trimmed() {
        assert_eq!(
            PersonName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
    }

    #[test]
    fn a_blank_name_is_rejected() {
        assert!(PersonName::parse("   ").is_err());
        assert!(ProductName::parse("").is_err());
    }

    #[test]
    fn a_name_of_201_characters_is_rejected_and_200_accepted() {
        assert!(PersonName::parse(&"é".repeat(200)).is_ok());
        assert!(PersonName::parse(&"é".repeat(201)).is_err());
    }

    #[test]
    fn a_name_with_a_nul_byte_or_newline_is_rejected() {
        assert!(PersonName::parse("a\0b").is_err());
        assert!(ProductName::parse("a\nb").is_err());
    }

    #[test]
    fn unicode_names_are_welcome() {
        assert!(PersonName::parse("Zoë Ångström 山田").is_ok());
    }

    #[test]
    fn a_cancel_reason_may_be_500_characters() {
        assert!(CancelReason::parse(&"x".repeat(500)).is_ok());
        assert!(CancelReason::parse(&"x".repeat(501)).is_err());
    }

    #[test]
    fn an_email_needs_one_at_with_text_on_both_sides() {
        assert!(Email::parse("ada@example.com").is_ok());
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a@b@c",
            "a da@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_quantity_must_be_between_one_and_a_million() {
        assert!(Quantity::parse(0).is_err());
        assert!(Quantity::parse(-1).is_err());
        assert_eq!(Quantity::parse(1).map(Quantity::get), Ok(1));
        assert!(Quantity::parse(1_000_000).is_ok());
        assert!(Quantity::parse(1_000_001).is_err());
        assert!(Quantity::parse(i64::MAX).is_err());
    }
}
