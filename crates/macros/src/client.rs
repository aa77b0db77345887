//! Typed clients: the `ShopClient` and `ShopBlockingClient` that
//! `#[zerorpc::service]` generates next to the service, and that
//! `#[zerorpc::client]` generates alone from a trait describing a service
//! implemented elsewhere.

use proc_macro2::{Ident, TokenStream as TokenStream2, TokenTree};
use quote::{format_ident, quote};
use syn::{
    Attribute, FnArg, GenericArgument, LitStr, Pat, PathArguments, ReturnType, Signature, Type,
    Visibility,
};

use crate::{
    MethodOptions, first_generic, is_byte_vec, is_option, last_segment, result_ok_type,
    stream_shape,
};

/// A remote method as a client sees it.
pub(crate) struct RemoteMethod {
    ident: Ident,
    /// The name it is called by on the wire.
    name: LitStr,
    docs: Vec<Attribute>,
    /// Parameter names and their types as the service declares them.
    params: Vec<(Ident, Type)>,
    reply: Reply,
}

enum Reply {
    /// One value of this type.
    Value(Type),
    /// A stream of items of this type.
    Stream(Type),
}

/// Methods a client may not have, being the client's own.
const RESERVED: &[&str] = &["new", "connect", "client", "blocking"];

impl RemoteMethod {
    /// The remote method declared by `sig`, which takes `&self`.
    pub(crate) fn new(
        sig: &Signature,
        attrs: &[Attribute],
        opts: &MethodOptions,
    ) -> syn::Result<RemoteMethod> {
        let ident = sig.ident.clone();
        if RESERVED.contains(&ident.to_string().as_str()) {
            return Err(syn::Error::new_spanned(
                &sig.ident,
                format!(
                    "a remote method named `{ident}` clashes with the typed client's own `{ident}`: \
                     name the Rust method otherwise and keep the remote name with \
                     #[zerorpc(name = \"{ident}\")], or generate no client (`client = false`)"
                ),
            ));
        }
        let name = opts
            .name
            .clone()
            .unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span()));
        let docs = attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .cloned()
            .collect();
        let mut params = Vec::new();
        for (i, input) in sig.inputs.iter().skip(1).enumerate() {
            let FnArg::Typed(pt) = input else { continue };
            let param = match &*pt.pat {
                Pat::Ident(p) => {
                    let text = p.ident.to_string();
                    let trimmed = text.trim_start_matches('_');
                    if trimmed.is_empty() || trimmed.starts_with("r#") {
                        p.ident.clone()
                    } else {
                        format_ident!("{}", trimmed, span = p.ident.span())
                    }
                }
                _ => format_ident!("arg{}", i),
            };
            params.push((param, (*pt.ty).clone()));
        }
        let ok_ty = match &sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) => Some(result_ok_type(ty).unwrap_or(ty).clone()),
        };
        let shape = ok_ty.as_ref().and_then(stream_shape);
        // A stream named by its option only (`#[zerorpc(iter)]` on a type
        // the attribute cannot see into) has items of unknown type.
        let reply = match opts.kind.or(shape.map(|(kind, _)| kind)) {
            Some(_) => {
                let item = shape
                    .and_then(|(_, item)| item)
                    .map(|t| result_ok_type(t).unwrap_or(t));
                Reply::Stream(item.map_or_else(dynamic, owned))
            }
            None => Reply::Value(ok_ty.as_ref().map_or_else(|| syn::parse_quote!(()), owned)),
        };
        Ok(RemoteMethod {
            ident,
            name,
            docs,
            params,
            reply,
        })
    }
}

impl RemoteMethod {
    /// The client's parameters, after `&self`.
    fn inputs(&self) -> impl Iterator<Item = TokenStream2> + '_ {
        self.params.iter().map(|(param, ty)| {
            let ty = borrowed(ty);
            quote!(#param: #ty)
        })
    }
}

/// What the typed clients are called and who sees them.
pub(crate) struct ClientNames {
    pub(crate) vis: Visibility,
    pub(crate) name: Ident,
    /// Whose description they are, for their docs.
    pub(crate) service: String,
}

impl ClientNames {
    /// `ShopClient` gives `ShopBlockingClient`; another name gets
    /// `Blocking` appended.
    fn blocking(&self) -> Ident {
        let name = self.name.to_string();
        match name.strip_suffix("Client") {
            Some(stem) => format_ident!("{}BlockingClient", stem, span = self.name.span()),
            None => format_ident!("{}Blocking", name, span = self.name.span()),
        }
    }
}

/// The async and blocking typed clients of `methods`.
pub(crate) fn expand(names: &ClientNames, methods: &[RemoteMethod]) -> TokenStream2 {
    let ClientNames { vis, name, service } = names;
    let blocking = names.blocking();
    let client_doc = format!(
        "A typed client of the `{service}` service: one method per remote method, \
         with the parameter and result types of the service."
    );
    let blocking_doc = format!(
        "A blocking typed client of the `{service}` service: each call blocks the calling \
         thread (see [`{name}`] for the async one)."
    );
    let async_methods = methods.iter().map(|m| async_method(vis, m));
    let blocking_methods = methods.iter().map(|m| blocking_method(vis, m));
    quote! {
        #[doc = #client_doc]
        #[derive(Clone, Debug)]
        #[allow(dead_code)]
        #vis struct #name {
            client: ::zerorpc::Client,
        }

        #[allow(dead_code)]
        impl #name {
            /// Makes calls on `client`.
            #vis fn new(client: ::zerorpc::Client) -> Self {
                Self { client }
            }

            /// A client with default settings connected to `endpoint`.
            #vis fn connect(endpoint: &str) -> ::zerorpc::Result<Self> {
                ::zerorpc::Client::connect(endpoint).map(Self::new)
            }

            /// The untyped client behind this one.
            #vis fn client(&self) -> &::zerorpc::Client {
                &self.client
            }

            /// A blocking view of this client.
            #vis fn blocking(&self) -> #blocking {
                #blocking::new(self.client.blocking())
            }

            #(#async_methods)*
        }

        #[doc = #blocking_doc]
        #[derive(Clone, Debug)]
        #[allow(dead_code)]
        #vis struct #blocking {
            client: ::zerorpc::BlockingClient,
            typed: #name,
        }

        #[allow(dead_code)]
        impl #blocking {
            /// Makes calls on `client`.
            #vis fn new(client: ::zerorpc::BlockingClient) -> Self {
                let typed = #name::new(::std::clone::Clone::clone(client.client()));
                Self { client, typed }
            }

            /// A client with default settings connected to `endpoint`.
            #vis fn connect(endpoint: &str) -> ::zerorpc::Result<Self> {
                ::zerorpc::Client::connect(endpoint).map(|client| Self::new(client.blocking()))
            }

            /// The untyped client behind this one.
            #vis fn client(&self) -> &::zerorpc::BlockingClient {
                &self.client
            }

            #(#blocking_methods)*
        }
    }
}

fn async_method(vis: &Visibility, method: &RemoteMethod) -> TokenStream2 {
    let RemoteMethod {
        ident,
        name,
        docs,
        params,
        reply,
    } = method;
    let inputs = method.inputs();
    // `Vec<u8>` parameters (taken as `&[u8]`) go as msgpack bin, which a
    // Python service receives as `bytes` and ours as `Vec<u8>`.
    let arg = |value: TokenStream2, ty: &Type| {
        if is_byte_vec(ty) {
            quote!(::zerorpc::__private::arg(::zerorpc::__private::serde_bytes::Bytes::new(#value))?)
        } else {
            quote!(::zerorpc::__private::arg(&#value)?)
        }
    };
    let args = params.iter().map(|(param, ty)| {
        let inner = last_segment(ty)
            .and_then(first_generic)
            .filter(|_| is_option(ty));
        match inner {
            Some(inner) => {
                let some = arg(quote!(*v), inner);
                quote! {
                    match &#param {
                        ::std::option::Option::Some(v) => ::std::option::Option::Some(#some),
                        ::std::option::Option::None => ::std::option::Option::None,
                    }
                }
            }
            None => {
                let value = arg(quote!(#param), ty);
                quote!(::std::option::Option::Some(#value))
            }
        }
    });
    let see = format!("Calls the remote method `{}`.", name.value());
    let (output, call) = match reply {
        Reply::Value(ty) => (
            quote!(::zerorpc::Result<#ty>),
            quote!(::zerorpc::__private::call(&self.client, #name, __args).await),
        ),
        Reply::Stream(item) => (
            quote!(::zerorpc::Result<::zerorpc::ReplyStream<#item>>),
            quote!(::zerorpc::__private::stream(&self.client, #name, __args).await),
        ),
    };
    quote! {
        #(#docs)*
        #[doc = ""]
        #[doc = #see]
        #vis async fn #ident(&self, #(#inputs),*) -> #output {
            let __args = ::zerorpc::__private::call_args(::std::vec![#(#args),*]);
            #call
        }
    }
}

fn blocking_method(vis: &Visibility, method: &RemoteMethod) -> TokenStream2 {
    let (ident, name, docs) = (&method.ident, &method.name, &method.docs);
    let inputs = method.inputs();
    let names = method.params.iter().map(|(param, _)| param);
    let see = format!("Calls the remote method `{}`, blocking.", name.value());
    let call = quote!(::zerorpc::__private::block_on(self.typed.#ident(#(#names),*)));
    let (output, body) = match &method.reply {
        Reply::Value(ty) => (quote!(::zerorpc::Result<#ty>), call),
        Reply::Stream(item) => (
            quote!(::zerorpc::Result<::zerorpc::BlockingStream<#item>>),
            quote!(#call.map(::zerorpc::BlockingStream::from)),
        ),
    };
    quote! {
        #(#docs)*
        #[doc = ""]
        #[doc = #see]
        #vis fn #ident(&self, #(#inputs),*) -> #output {
            #body
        }
    }
}

/// How a client takes a parameter the service declares as `ty`: `String`
/// as `&str`, `Vec<T>` as `&[T]` (also inside `Option`), anything else
/// as declared.
fn borrowed(ty: &Type) -> Type {
    let Some(segment) = last_segment(ty) else {
        return ty.clone();
    };
    let inner = first_generic(segment);
    match (segment.ident.to_string().as_str(), inner) {
        ("String", None) => syn::parse_quote!(&str),
        ("Vec", Some(item)) => syn::parse_quote!(&[#item]),
        ("Option", Some(inner)) => {
            let inner = borrowed(inner);
            syn::parse_quote!(::std::option::Option<#inner>)
        }
        _ => ty.clone(),
    }
}

/// What a client decodes a result declared as `ty` into: an owned type,
/// since the result outlives the reply it came in. Anywhere in the type,
/// `&str` gives `String`, `&[T]` gives `Vec<T>`, `&T` gives `T`, and other
/// lifetimes become `'static` (`Cow<'a, str>` decodes owned). A type the
/// client cannot name (`impl Trait`, `Self`) is decoded as a dynamic value.
fn owned(ty: &Type) -> Type {
    if mentions_unnameable(&quote!(#ty)) {
        return dynamic();
    }
    let mut ty = ty.clone();
    make_owned(&mut ty);
    ty
}

fn make_owned(ty: &mut Type) {
    match ty {
        Type::Reference(r) => {
            let mut elem = (*r.elem).clone();
            *ty = match &mut elem {
                Type::Path(p) if p.path.is_ident("str") => syn::parse_quote!(::std::string::String),
                Type::Slice(s) => {
                    make_owned(&mut s.elem);
                    let item = &s.elem;
                    syn::parse_quote!(::std::vec::Vec<#item>)
                }
                other => {
                    make_owned(other);
                    other.clone()
                }
            };
        }
        Type::Path(p) => {
            for segment in &mut p.path.segments {
                if let PathArguments::AngleBracketed(args) = &mut segment.arguments {
                    for arg in &mut args.args {
                        match arg {
                            GenericArgument::Type(t) => make_owned(t),
                            GenericArgument::Lifetime(l) => {
                                *l = syn::Lifetime::new("'static", l.span());
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        Type::Tuple(t) => t.elems.iter_mut().for_each(make_owned),
        Type::Array(a) => make_owned(&mut a.elem),
        Type::Slice(s) => make_owned(&mut s.elem),
        Type::Group(g) => make_owned(&mut g.elem),
        Type::Paren(p) => make_owned(&mut p.elem),
        _ => {}
    }
}

fn dynamic() -> Type {
    syn::parse_quote!(::zerorpc::Value)
}

fn mentions_unnameable(tokens: &TokenStream2) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident == "impl" || ident == "Self",
        TokenTree::Group(group) => mentions_unnameable(&group.stream()),
        _ => false,
    })
}
