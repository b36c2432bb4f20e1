//! One registry from a config enum (`TabModelConfig`, `TextModelConfig`, `ImageModelConfig`)
//! to its components: [`component_enum!`] declares the enum from a list of
//! `Variant(Config)` pairs, each `Config` implementing
//! [`ComponentConfig`](crate::models::ComponentConfig), and writes `From<Config>`, `name`,
//! `validate` and `build` for it. The serde tag of each variant is its config's
//! [`ComponentConfig::NAME`](crate::models::ComponentConfig::NAME); earlier names are
//! accepted through `#[serde(alias = ..)]` on the variant.

/// Declares a serializable enum over component configs, tagged `"model"`, with `From` for
/// each config and `name`, `validate`, `build` dispatching to
/// [`ComponentConfig`](crate::models::ComponentConfig).
macro_rules! component_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $enum:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident($config:ty) = $tag:literal
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "model")]
        $vis enum $enum {
            $(
                $(#[$vmeta])*
                #[serde(rename = $tag)]
                $variant($config),
            )*
        }

        impl $enum {
            /// The chosen component's [`ComponentConfig::NAME`](crate::models::ComponentConfig::NAME).
            pub fn name(&self) -> &'static str {
                match self {
                    $($enum::$variant(_) => <$config as $crate::models::ComponentConfig>::NAME,)*
                }
            }

            /// Checks the chosen component's hyper-parameters.
            pub fn validate(&self) -> $crate::Result<()> {
                match self {
                    $($enum::$variant(c) => $crate::models::ComponentConfig::validate(c),)*
                }
            }

            /// Builds the chosen component under `path`.
            pub fn build(
                &self,
                path: &tch::nn::Path,
            ) -> $crate::Result<Box<dyn $crate::models::Component>> {
                Ok(match self {
                    $($enum::$variant(c) => Box::new($crate::models::ComponentConfig::build(c, path)?),)*
                })
            }
        }

        $(
            impl From<$config> for $enum {
                fn from(c: $config) -> Self {
                    $enum::$variant(c)
                }
            }
        )*

        #[cfg(test)]
        mod registry_tags {
            use super::*;

            /// Every variant's serde tag is its config's `NAME`.
            #[test]
            fn tags_are_the_config_names() {
                $(assert_eq!(<$config as $crate::models::ComponentConfig>::NAME, $tag);)*
            }
        }
    };
}
