//! The crate's internal macros: builder setters and early returns with typed errors.
//!
//! * [`setters!`] writes the builder-style setters of a config struct
//!   (`pub fn lr(mut self, v: f64) -> Self`), each documented from the field's name.
//! * [`bail!`] returns a [`WideDeepError`](crate::WideDeepError) from the current function;
//!   [`ensure!`] does so unless a condition holds (polars' `polars_bail!` / `polars_ensure!`):
//!
//! ```text
//! ensure!(dropout >= 0.0 && dropout < 1.0, config("tab_mlp.dropout"), "must be in [0, 1), got {dropout}");
//! ensure!(t.dim() == 2, input("cat"), "expected [batch, n_cat], got {:?}", t.size());
//! bail!(missing(), "the training data has no target");
//! bail!(some_error_value);
//! ```

/// Builder-style setters `pub fn name(mut self, v: T) -> Self` for the listed fields of a
/// config struct. A field may carry its own doc comment; otherwise it is documented as
/// "Sets `name`."
macro_rules! setters {
    ($($(#[$meta:meta])* $name:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$meta])*
            #[doc = concat!("Sets `", stringify!($name), "`.")]
            pub fn $name(mut self, v: $ty) -> Self {
                self.$name = v;
                self
            }
        )*
    };
}
pub(crate) use setters;

/// Returns early with an error: `bail!(config(field), "fmt", args..)` for
/// [`WideDeepError::InvalidConfig`](crate::WideDeepError::InvalidConfig),
/// `bail!(input(name), "fmt", args..)` for
/// [`WideDeepError::InputMismatch`](crate::WideDeepError::InputMismatch),
/// `bail!(missing(), "fmt", args..)` for [`WideDeepError::Missing`](crate::WideDeepError::Missing),
/// or `bail!(error)` for any value that converts into a `WideDeepError`.
macro_rules! bail {
    (config($field:expr), $($fmt:tt)+) => {
        return Err($crate::error::WideDeepError::InvalidConfig {
            field: ($field).into(),
            reason: format!($($fmt)+),
        })
    };
    (input($input:expr), $($fmt:tt)+) => {
        return Err($crate::error::WideDeepError::InputMismatch {
            input: ($input).into(),
            reason: format!($($fmt)+),
        })
    };
    (missing(), $($fmt:tt)+) => {
        return Err($crate::error::WideDeepError::Missing(format!($($fmt)+)))
    };
    ($err:expr $(,)?) => {
        return Err(::std::convert::From::from($err))
    };
}
pub(crate) use bail;

/// `ensure!(condition, <bail! arguments>)`: returns the [`bail!`] error unless `condition`
/// holds.
macro_rules! ensure {
    ($cond:expr, $($rest:tt)+) => {
        if !($cond) {
            $crate::macros::bail!($($rest)+);
        }
    };
}
pub(crate) use ensure;

#[cfg(test)]
mod tests {
    use crate::error::{Result, WideDeepError};

    fn check(x: i64) -> Result<i64> {
        ensure!(x >= 0, config("x"), "must be ≥ 0, got {x}");
        ensure!(x != 1, input(format!("col{x}")), "one is not allowed");
        ensure!(x != 2, missing(), "no {}", "two");
        if x == 3 {
            bail!(WideDeepError::Device("three".into()));
        }
        Ok(x)
    }

    #[derive(Default)]
    struct Cfg {
        lr: f64,
        name: String,
    }

    impl Cfg {
        setters!(
            /// The learning rate.
            lr: f64,
            name: String,
        );
    }

    #[test]
    fn macros_build_the_errors_they_name() {
        assert_eq!(check(5).unwrap(), 5);
        assert!(matches!(
            check(-1),
            Err(WideDeepError::InvalidConfig { field, reason }) if field == "x" && reason == "must be ≥ 0, got -1"
        ));
        assert!(
            matches!(check(1), Err(WideDeepError::InputMismatch { input, .. }) if input == "col1")
        );
        assert!(matches!(check(2), Err(WideDeepError::Missing(m)) if m == "no two"));
        assert!(matches!(check(3), Err(WideDeepError::Device(_))));
        let c = Cfg::default().lr(0.5).name("a".into());
        assert_eq!((c.lr, c.name.as_str()), (0.5, "a"));
    }
}
